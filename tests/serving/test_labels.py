"""Labels moved by HandleReloadConfigRequest: never to an unavailable version, zero failed requests."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest
from google.protobuf import text_format
from tensorflow_serving.apis import model_management_pb2

from serving import codec
from serving.model_config import parse_config
from tests.serving.conftest import expected, predict_request

CONFIG = """
model_config_list {
  config {
    name: "tiny" base_path: "%s" model_platform: "tensorflow"
    model_version_policy { all {} }
    version_labels { key: "stable" value: %d }
    version_labels { key: "canary" value: %d }
  }
}
"""


def _reload(stub, base: str, stable: int, canary: int):
    request = model_management_pb2.ReloadConfigRequest()
    config = text_format.Parse(CONFIG % (base, stable, canary), request.config)
    return stub.model.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=config))


def _wait(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def _stable(stub) -> int:
    return stub.predict.Predict(predict_request(label="stable"), timeout=10).model_spec.version.value


def test_label_to_an_unavailable_version_is_refused_until_it_loads(base_path, serve, stubs):
    base_path(1)
    base_path(2)
    server = serve(models=parse_config(CONFIG % (base_path.path, 1, 2)), file_system_poll_wait_seconds=0.1)
    s = stubs(server)
    with pytest.raises(grpc.RpcError) as err:
        _reload(s, base_path.path, 3, 2)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "version 3 of model tiny, which is not currently available" in err.value.details()
    assert _stable(s) == 1  # the old labels keep serving
    assert s.predict.Predict(predict_request(label="canary")).model_spec.version.value == 2
    base_path(3)  # the configured label follows once its version is loaded
    _wait(lambda: _stable(s) == 3)
    r = s.predict.Predict(predict_request(label="stable"))
    np.testing.assert_allclose(codec.to_numpy(r.outputs["probability"]), expected(3), rtol=1e-6)


def test_label_moves_under_load_have_zero_failures(base_path, serve, stubs):
    base_path(1)
    base_path(2)
    server = serve(models=parse_config(CONFIG % (base_path.path, 1, 2)), file_system_poll_wait_seconds=0.05)
    s = stubs(server)
    failures: list[str] = []
    seen: list[int] = []
    stop = threading.Event()
    finished = []

    def client() -> None:
        stub = stubs(server)
        while not stop.is_set() and len(seen) < 100000:
            try:
                r = stub.predict.Predict(predict_request(label="stable"), timeout=10)
                version = r.model_spec.version.value
                if not np.allclose(codec.to_numpy(r.outputs["probability"]), expected(version), rtol=1e-6):
                    failures.append(f"wrong numbers for version {version}")
                seen.append(version)
            except grpc.RpcError as err:
                failures.append(f"{err.code()}: {err.details()}")
        finished.append(True)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    moves = 0
    for target in (2, 1, 2, 1, 2):
        before = len(seen)
        assert _reload(s, base_path.path, target, 2).status.error_code == 0
        moves += 1
        _wait(lambda: len(seen) > before + 20 and seen[-1] == target)  # noqa: B023 - evaluated now
    stop.set()
    for t in threads:
        t.join()
    assert len(finished) == 3  # no client thread died
    assert failures == []
    assert moves == 5 and set(seen) == {1, 2}


SHIPPED = """
model_config_list {
  config {
    name: "tiny" base_path: "%s" model_platform: "tensorflow"
    model_version_policy { latest { num_versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
}
"""


def _ready(server) -> int:
    """The readiness URL of docker/k8s/serving.yaml: the stable label's metadata."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    conn.request("GET", "/v1/models/tiny/labels/stable/metadata")
    status = conn.getresponse().status
    conn.close()
    return status


def test_a_labelled_version_outlives_the_latest_n_policy_and_readiness_follows_it(base_path, serve, stubs):
    """latest {2} + stable on v1, then v3 is exported: v1 stays (the label pins it); v2 and v3 serve too.

    Once v1 leaves the disk the label cannot be served: the readiness URL fails instead of staying 200.
    """
    import shutil

    base_path(1)
    base_path(2)
    server = serve(models=parse_config(SHIPPED % base_path.path), rest_api_port=0)
    s = stubs(server)
    assert _stable(s) == 1 and _ready(server) == 200
    base_path(3)
    _wait(lambda: 3 in server.manager.view("tiny").servables)
    assert sorted(server.manager.view("tiny").servables) == [1, 2, 3]
    r = s.predict.Predict(predict_request(label="stable"), timeout=10)
    assert r.model_spec.version.value == 1
    np.testing.assert_allclose(codec.to_numpy(r.outputs["probability"]), expected(1), rtol=1e-6)
    assert s.predict.Predict(predict_request(), timeout=10).model_spec.version.value == 3
    assert _ready(server) == 200
    shutil.rmtree(f"{base_path.path}/1")
    _wait(lambda: 1 not in server.manager.view("tiny").servables)
    assert _ready(server) == 404
    with pytest.raises(grpc.RpcError) as err:
        _stable(s)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
