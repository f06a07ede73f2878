"""The apply-and-follow path against a fake Kubernetes API server on 127.0.0.1 (in addition to rendering).

The fake implements only the endpoints ``recsys submit`` calls; a kubeconfig file points the official
client at it. The job's status advances one step per GET, so the submitter sees every transition.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from tests import k8s_schema

pytest.importorskip("kubernetes", reason="needs the kubernetes extra: pip install -e '.[kubernetes]'")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TFJOB_STATUSES = [
    {},
    {"conditions": [{"type": "Created", "status": "True"}]},
    {"conditions": [{"type": "Created", "status": "True"}, {"type": "Running", "status": "True"}],
     "replicaStatuses": {"Worker": {"active": 2}}},
    {"conditions": [{"type": "Created", "status": "True"}, {"type": "Running", "status": "False"},
                    {"type": "Succeeded", "status": "True", "message": "TFJob ml/j succeeded."}],
     "replicaStatuses": {"Worker": {"succeeded": 2}}},
]
JOB_STATUSES = [
    {},
    {"active": 2},
    {"active": 1, "failed": 1},
    {"failed": 3, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                  "message": "Job has reached the specified backoff limit"}]},
]


class FakeApi:
    """Validates POSTed objects (422, as a real API server) and records them; serves the job status
    sequence; 409 for a second create."""

    def __init__(self, has_tfjob_crd: bool = True) -> None:
        self.created: list[dict] = []
        self.rejected: list[list[str]] = []
        self.gets = 0
        self.has_tfjob_crd = has_tfjob_crd
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if "/tfjobs" in self.path and not api.has_tfjob_crd:
                    return self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                if any(o["kind"] == body["kind"] and o["metadata"]["name"] == body["metadata"]["name"]
                       for o in api.created):
                    return self._send(409, {"kind": "Status", "code": 409, "reason": "AlreadyExists"})
                problems = k8s_schema.errors(body)  # what a real API server (1.29) would refuse
                if problems:
                    api.rejected.append(problems)
                    return self._send(422, {"kind": "Status", "code": 422, "reason": "Invalid",
                                            "message": "; ".join(problems)})
                body["_path"] = self.path
                api.created.append(body)
                self._send(201, {k: v for k, v in body.items() if k != "_path"})

            def do_GET(self) -> None:
                tfjob = "/tfjobs/" in self.path
                statuses = TFJOB_STATUSES if tfjob else JOB_STATUSES
                status = statuses[min(api.gets, len(statuses) - 1)]
                api.gets += 1
                name = self.path.rstrip("/").split("/")[-2 if self.path.endswith("/status") else -1]
                kind, version = ("TFJob", "kubeflow.org/v1") if tfjob else ("Job", "batch/v1")
                self._send(200, {"apiVersion": version, "kind": kind,
                                 "metadata": {"name": name, "namespace": "ml"}, "status": status})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def kubeconfig(self, directory) -> str:
        path = os.path.join(str(directory), "kubeconfig")
        with open(path, "w") as fh:
            yaml.safe_dump({
                "apiVersion": "v1", "kind": "Config", "current-context": "fake",
                "clusters": [{"name": "fake", "cluster": {
                    "server": f"http://127.0.0.1:{self.server.server_address[1]}"}}],
                "users": [{"name": "me", "user": {"token": "not-a-secret"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "me"}}]}, fh)
        return path


@pytest.fixture
def fake_api():
    apis: list[FakeApi] = []

    def make(**kwargs) -> FakeApi:
        apis.append(FakeApi(**kwargs))
        return apis[-1]

    yield make
    for api in apis:
        api.server.shutdown()
        api.server.server_close()


def _submit(kubeconfig: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recsys.cli", "submit", "--cluster", "kubernetes",
                           "--config", "configs/synthetic_small.yaml", "--image", "img:1",
                           "--namespace", "ml", "--name", "j", "--model_dir", "/mnt/recsys/runs/j",
                           "--pvc", "recsys-data", "--kubeconfig", kubeconfig,
                           "--poll_interval", "0.05", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


def test_tfjob_is_created_and_followed_to_success(fake_api, tmp_path):
    api = fake_api()
    proc = _submit(api.kubeconfig(tmp_path), "--workers", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert api.rejected == []
    assert [(o["kind"], o["_path"]) for o in api.created] == [
        ("ConfigMap", "/api/v1/namespaces/ml/configmaps"),
        ("NetworkPolicy", "/apis/networking.k8s.io/v1/namespaces/ml/networkpolicies"),
        ("TFJob", "/apis/kubeflow.org/v1/namespaces/ml/tfjobs")]
    dry = subprocess.run([sys.executable, "-m", "recsys.cli", "submit", "--cluster", "kubernetes",
                          "--config", "configs/synthetic_small.yaml", "--image", "img:1", "--namespace", "ml",
                          "--name", "j", "--model_dir", "/mnt/recsys/runs/j", "--pvc", "recsys-data",
                          "--workers", "2", "--dry_run"],
                         cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    assert [{k: v for k, v in o.items() if k != "_path"} for o in api.created] == list(
        yaml.safe_load_all(dry.stdout))  # exactly the manifests --dry_run prints
    phases = [line.split(": ")[1].split(" (")[0] for line in proc.stdout.splitlines()
              if line.startswith("[submit] TFJob ml/j: ")]
    assert phases == ["Pending", "Created", "Running", "Succeeded"]
    assert "ended: Succeeded" in proc.stdout


def test_indexed_job_failure_is_reported(fake_api, tmp_path):
    api = fake_api()
    proc = _submit(api.kubeconfig(tmp_path), "--k8s_kind", "indexedjob", "--workers", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert api.rejected == []
    assert [o["kind"] for o in api.created] == ["ConfigMap", "NetworkPolicy", "Service", "Job"]
    assert api.created[3]["_path"] == "/apis/batch/v1/namespaces/ml/jobs"
    assert "active=1, succeeded=0, failed=1" in proc.stdout
    assert "ended: Failed (active=0, succeeded=0, failed=3; BackoffLimitExceeded" in proc.stdout


def test_existing_job_and_missing_operator_are_clear_errors(fake_api, tmp_path):
    api = fake_api()
    kubeconfig = api.kubeconfig(tmp_path)
    assert _submit(kubeconfig).returncode == 0
    again = _submit(kubeconfig)
    assert again.returncode != 0 and "ConfigMap ml/j-config already exists" in again.stderr
    no_crd = fake_api(has_tfjob_crd=False)
    proc = _submit(no_crd.kubeconfig(tmp_path / ".."), "--name", "k")
    assert proc.returncode != 0 and "use --k8s_kind=indexedjob" in proc.stderr
