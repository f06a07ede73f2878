"""Rendered manifests validate offline against the Kubernetes API schemas and the Kubeflow TFJob CRD.

``recsys submit --cluster kubernetes --dry_run`` is run for both kinds, with and without GPUs and a
PVC; every document must pass the strict schemas of every release in ``k8s_schema.VERSIONS`` (the
oldest supported one first). The validator itself is shown to reject what a real API server rejects.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import yaml

from tests import k8s_schema

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FULL = ["--gpus", "2", "--pvc", "recsys-data", "--service_account", "trainer", "--env", "NCCL_DEBUG=INFO",
        "--namespace", "ml", "--cpu", "8", "--memory", "32Gi", "--backoff_limit", "2"]
BARE = ["--gpus", "0", "--model_dir", "gs://bucket/runs/a"]


def _render(*args: str) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "recsys.cli", "submit", "--cluster", "kubernetes",
                           "--config", "configs/synthetic_small.yaml", "--dry_run", "--workers", "3",
                           "--image", "registry.example.com/recsys-trainer:1", "--name", "job-a",
                           "--model_dir", "/mnt/recsys/runs/a", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return list(yaml.safe_load_all(proc.stdout))


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], list[dict]]:
    return {(kind, name): _render("--k8s_kind", kind, *args)
            for kind in ("tfjob", "indexedjob") for name, args in (("gpu_pvc", FULL), ("cpu", BARE))}


@pytest.mark.parametrize("version", k8s_schema.VERSIONS)
@pytest.mark.parametrize("variant", ["gpu_pvc", "cpu"])
@pytest.mark.parametrize("kind, kinds", [("tfjob", ["ConfigMap", "NetworkPolicy", "TFJob"]),
                                         ("indexedjob", ["ConfigMap", "NetworkPolicy", "Service", "Job"])])
def test_rendered_manifests_validate(rendered, kind, kinds, variant, version):
    docs = rendered[(kind, variant)]
    assert [d["kind"] for d in docs] == kinds
    for doc in docs:
        assert k8s_schema.errors(doc, version) == [], doc["kind"]


def test_gpu_and_pvc_variant_renders_what_it_validates(rendered):
    """The validated GPU/PVC manifests really carry those fields (so the schema checked them)."""
    job = rendered[("indexedjob", "gpu_pvc")][-1]
    pod = job["spec"]["template"]["spec"]
    assert {v["name"] for v in pod["volumes"]} == {"data", "config", "dshm"}
    assert pod["serviceAccountName"] == "trainer" and pod["tolerations"]
    assert job["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"] == [
        {"type": "DisruptionTarget", "status": "True"}]
    tfjob = rendered[("tfjob", "gpu_pvc")][-1]
    worker = tfjob["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert worker["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"


def _mutated(doc: dict, path: list, value=None, delete: bool = False) -> dict:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


POD = ["spec", "template", "spec"]
WORKER = ["spec", "tfReplicaSpecs", "Worker"]


@pytest.mark.parametrize("kind, path, value, delete, message", [
    # the bug this file was written for: onPodConditions needs a status (Kubernetes <= 1.33)
    ("indexedjob", ["spec", "podFailurePolicy", "rules", 0, "onPodConditions", 0, "status"], None, True,
     "'status' is a required property"),
    ("indexedjob", [*POD, "containers", 0, "imagePullPolicyy"], "Always", False, "imagePullPolicyy"),
    ("indexedjob", ["spec", "completions"], "three", False, "'three' is not of type"),
    ("indexedjob", [*POD, "containers", 0, "name"], None, True, "'name' is a required property"),
    ("tfjob", [*WORKER, "replicass"], 3, False, "replicass"),
    ("tfjob", [*WORKER, "replicas"], "3", False, "'3' is not of type 'integer'"),
    ("tfjob", ["spec", "tfReplicaSpecs"], None, True, "'tfReplicaSpecs' is a required property"),
    ("tfjob", [*WORKER, "template", "spec", "containers", 0, "name"], "trainer", False,
     "needs a container named tensorflow"),
    ("tfjob", [*WORKER, "template", "spec", "containers", 0, "portz"], [], False, "portz"),
    ("tfjob", ["spec", "runPolicy", "cleanPodPolicy"], 3, False, "3 is not of type 'string'"),
    ("tfjob", ["metadata", "name"], "1-job", False, "DNS-1035"),
    ("tfjob", ["metadata", "labelz"], {}, False, "labelz"),
    ("service", ["metadata", "name"], "2-workers", False, "DNS-1035"),
    ("indexedjob", ["metadata", "name"], "Job_A", False, "DNS-1123"),
])
def test_the_validator_rejects_what_a_cluster_rejects(rendered, kind, path, value, delete, message):
    docs = rendered[("indexedjob" if kind == "service" else kind, "gpu_pvc")]
    doc = docs[-2] if kind == "service" else docs[-1]
    assert k8s_schema.errors(doc) == []
    problems = k8s_schema.errors(_mutated(doc, path, value, delete))
    assert any(message in p for p in problems), problems


def test_names_a_service_or_tfjob_rejects_are_refused():
    proc = subprocess.run([sys.executable, "-m", "recsys.cli", "submit", "--cluster", "kubernetes",
                           "--config", "configs/synthetic_small.yaml", "--dry_run", "--image", "i",
                           "--name", "1job", "--model_dir", "/x"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "starting with a letter" in proc.stderr
