"""docker/serving.Dockerfile and docker/k8s manifests: parse, and point at files and flags that exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from serving.batching import BatchingParameters
from serving.model_config import parse_config
from serving.version_policy import wanted_versions
from tests import k8s_schema

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_dockerfile_copies_existing_files():
    text = Path(REPO, "docker", "serving.Dockerfile").read_text()
    assert re.search(r"^FROM tensorflow/serving:2\.21\.0$", text, re.M)
    for src in re.findall(r"^COPY (docker/\S+)", text, re.M):
        assert os.path.exists(os.path.join(REPO, src)), src


def test_manifests_and_configs():
    k8s = os.path.join(REPO, "docker", "k8s")
    kinds = {}
    for name in ("serving.yaml", "monitor.yaml", "pd-gate-job.yaml"):
        for doc in yaml.safe_load_all(Path(k8s, name).read_text()):
            kinds.setdefault(name, []).append(doc["kind"])
    assert kinds == {
        "serving.yaml": ["PersistentVolumeClaim", "Deployment", "Service", "NetworkPolicy"],
        "monitor.yaml": ["Deployment", "Service"],
        "pd-gate-job.yaml": ["Job"],
    }
    (config,) = parse_config(Path(k8s, "config", "models.config").read_text())
    assert dict(config.version_labels) == {"stable": 1, "canary": 2}
    # TF Serving unloads what the policy drops, labelled or not: the policy itself must keep the labelled
    # versions, however many later exports appear on disk
    for newest in range(2, 8):
        assert set(config.version_labels.values()) <= wanted_versions(config, list(range(1, newest + 1)))
    batching = BatchingParameters.parse(Path(k8s, "config", "batching.config").read_text())
    assert batching.max_batch_size == 256
    monitor = next(yaml.safe_load_all(Path(k8s, "monitor.yaml").read_text()))
    args = monitor["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "monitor" and sum(a.startswith("--replica=") for a in args) == 2


def test_readiness_follows_the_stable_label():
    serving = next(d for d in _docs("serving.yaml") if d["kind"] == "Deployment")
    (server,) = serving["spec"]["template"]["spec"]["containers"]
    assert server["readinessProbe"]["httpGet"]["path"] == "/v1/models/ranker/labels/stable/metadata"


CLIENT = {"recsys.io/serving-client": "true"}


def test_only_labelled_clients_reach_the_serving_ports_and_monitoring_the_metrics():
    docs = _docs("serving.yaml")
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    serving = next(d for d in docs if d["kind"] == "Deployment")
    pod_labels = serving["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector and selector.items() <= pod_labels.items()  # the policy selects the serving pods
    assert policy["spec"]["policyTypes"] == ["Ingress"]  # ingress not listed below is denied
    (server,) = serving["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    clients, monitoring = policy["spec"]["ingress"]
    assert clients["from"] == [{"podSelector": {"matchLabels": CLIENT}}]  # no namespace: this one only
    assert clients["ports"] == [{"protocol": "TCP", "port": ports[n]} for n in ("grpc", "rest")]
    assert monitoring["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert monitoring["ports"] == [{"protocol": "TCP", "port": ports["rest"]}]
    assert serving["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(ports["rest"])
    # the project's own clients of the Service carry the label
    monitor = next(d for d in _docs("monitor.yaml") if d["kind"] == "Deployment")
    (job,) = _docs("pd-gate-job.yaml")
    for client in (monitor, job):
        assert CLIENT.items() <= client["spec"]["template"]["metadata"]["labels"].items(), client["kind"]
        (container,) = client["spec"]["template"]["spec"]["containers"]
        assert any("ranker-serving:8500" in a for a in container["args"])


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
    docs = [d for d in yaml.safe_load_all(Path(REPO, path).read_text()) if d]
    assert docs
    for doc in docs:
        assert k8s_schema.errors(doc, version) == [], f"{path}: {doc['kind']}"


def _docs(name: str) -> list[dict]:
    return list(yaml.safe_load_all(open(os.path.join(REPO, "docker", "k8s", name))))


def test_gate_job_runs_recsys_promote_on_the_file_the_servers_read():
    (job,) = _docs("pd-gate-job.yaml")
    pod = job["spec"]["template"]["spec"]
    (gate,) = pod["containers"]
    args = gate["args"]
    assert args[0] == "promote"
    flags = dict(a[2:].split("=", 1) for a in args[1:])
    assert flags["model"] == "ranker" and (flags["candidate"], flags["target"]) == ("canary", "stable")
    # The flags parse with the real command's flag definitions (names and types).
    code = (
        "import sys; from absl import flags; import recsys.cli.promote; "
        "flags.FLAGS(['promote', *sys.argv[1:]]); "
        "print(flags.FLAGS.max_relative_pd, flags.FLAGS.max_topk_churn)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args[1:]], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0.15", "0.3"]
    # --model_config_file is on the volume the serving replicas read their --model_config_file from.
    serving = next(d for d in _docs("serving.yaml") if d["kind"] == "Deployment")
    spec = serving["spec"]["template"]["spec"]
    (server,) = spec["containers"]
    server_flags = dict(a[2:].split("=", 1) for a in server["args"])
    assert server_flags["model_config_file"] == flags["model_config_file"] == "/live/models.config"
    assert float(server_flags["model_config_file_poll_wait_seconds"]) > 0  # replicas follow the file

    def claim(pod_spec: dict, container: dict, path: str) -> str:
        mount = next(m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
        volume = next(v for v in pod_spec["volumes"] if v["name"] == mount["name"])
        return volume["persistentVolumeClaim"]["claimName"]

    live = claim(pod, gate, flags["model_config_file"])
    assert live == claim(spec, server, server_flags["model_config_file"]) == "ranker-serving-live-config"
    assert not next(m for m in gate["volumeMounts"] if m["mountPath"] == "/live").get("readOnly")
    assert claim(pod, gate, flags["log_file"]) == live
    # The seed step copies the ConfigMap's models.config in once, and never over a promoted one.
    (seed,) = spec["initContainers"]
    assert "[ -f /live/models.config ] ||" in seed["command"][-1]
    assert {d["kind"]: d["metadata"]["name"] for d in _docs("serving.yaml")}["PersistentVolumeClaim"] == live
