"""docker/serving.Dockerfile and docker/k8s manifests: parse, and point at files and flags that exist."""

from __future__ import annotations

import os
import re

import pytest
import yaml

from serving.batching import BatchingParameters
from serving.models import parse_config
from tests import k8s_schema

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_dockerfile_copies_existing_files():
    text = open(os.path.join(REPO, "docker", "serving.Dockerfile")).read()
    assert re.search(r"^FROM tensorflow/serving:2\.21\.0$", text, re.M)
    for src in re.findall(r"^COPY (docker/\S+)", text, re.M):
        assert os.path.exists(os.path.join(REPO, src)), src


def test_manifests_and_configs():
    k8s = os.path.join(REPO, "docker", "k8s")
    kinds = {}
    for name in ("serving.yaml", "monitor.yaml", "pd-gate-job.yaml"):
        for doc in yaml.safe_load_all(open(os.path.join(k8s, name))):
            kinds.setdefault(name, []).append(doc["kind"])
    assert kinds == {
        "serving.yaml": ["Deployment", "Service"],
        "monitor.yaml": ["Deployment", "Service"],
        "pd-gate-job.yaml": ["Job"],
    }
    (config,) = parse_config(open(os.path.join(k8s, "config", "models.config")).read())
    assert dict(config.version_labels) == {"stable": 1, "canary": 2}
    batching = BatchingParameters.parse(open(os.path.join(k8s, "config", "batching.config")).read())
    assert batching.max_batch_size == 256
    monitor = next(yaml.safe_load_all(open(os.path.join(k8s, "monitor.yaml"))))
    args = monitor["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "monitor" and sum(a.startswith("--replica=") for a in args) == 2


def _k8s_files() -> list[str]:
    k8s = os.path.join(REPO, "docker", "k8s")
    return sorted(
        os.path.relpath(os.path.join(d, f), REPO)
        for d, _, files in os.walk(k8s)
        for f in files
        if f.endswith((".yaml", ".yml"))
    )


def test_every_k8s_file_is_covered():
    wanted = {"docker/k8s/monitor.yaml", "docker/k8s/pd-gate-job.yaml", "docker/k8s/serving.yaml"}
    assert wanted <= set(_k8s_files())


@pytest.mark.parametrize("version", k8s_schema.VERSIONS)
@pytest.mark.parametrize("path", _k8s_files())
def test_k8s_files_validate_against_the_api_schemas(path, version):
    docs = [d for d in yaml.safe_load_all(open(os.path.join(REPO, path))) if d]
    assert docs
    for doc in docs:
        assert k8s_schema.errors(doc, version) == [], f"{path}: {doc['kind']}"
