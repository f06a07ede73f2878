"""Version watching: new versions hot-swapped under load, corrupt versions reported, policies."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from serving import codec, testing
from serving.model_config import parse_config
from tests.serving.conftest import ROWS, expected, predict_request

State = get_model_status_pb2.ModelVersionStatus


def _status(s, name="tiny") -> dict[int, tuple[int, int, str]]:
    resp = s.model.GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=name))
    )
    return {
        v.version: (v.state, v.status.error_code, v.status.error_message) for v in resp.model_version_status
    }


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.mark.parametrize("batching", [False, True], ids=["direct", "batching"])
def test_hot_swap_under_load_has_zero_failures(base_path, serve, stubs, batching):
    from serving.batching import BatchingParameters

    base_path(1)
    params = (
        BatchingParameters(max_batch_size=16, batch_timeout_micros=500, num_batch_threads=2)
        if batching
        else None
    )
    server = serve(base=base_path.path, file_system_poll_wait_seconds=0.05, rest_api_port=0, batching=params)
    s = stubs(server)
    seen: dict[int, int] = {}
    failures: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    rest_ok = [0]

    def counted(fn):
        """A client thread that dies (any exception) is a failure, not a silently shorter stream."""

        def run():
            try:
                fn()
            except Exception as err:  # noqa: BLE001 - recorded, and the test fails on it
                failures.append(f"{fn.__name__} thread died: {type(err).__name__}: {err}")

        return run

    def client():
        stub = stubs(server).predict
        for _ in range(5000):  # bounded; stops early when the swaps are done
            if stop.is_set():
                return
            try:
                r = stub.Predict(predict_request(), timeout=10)
                version = r.model_spec.version.value
                got = codec.to_numpy(r.outputs["probability"])
                if not np.allclose(got, expected(version), rtol=1e-6):
                    failures.append(f"wrong numbers for version {version}")
                with lock:
                    seen[version] = seen.get(version, 0) + 1
            except grpc.RpcError as err:
                failures.append(f"{err.code()}: {err.details()}")

    def rest_client():
        import http.client
        import json

        conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=10)
        body = json.dumps(
            {
                "inputs": {
                    k: [v.decode() if isinstance(v, bytes) else float(v) for v in col]
                    for k, col in ROWS.items()
                }
            }
        )
        for _ in range(5000):
            if stop.is_set():
                break
            conn.request("POST", "/v1/models/tiny:predict", body=body)
            resp = conn.getresponse()
            payload = resp.read()
            if resp.status != 200:
                failures.append(f"REST {resp.status}: {payload[:200]!r}")
                continue
            got = np.ravel(json.loads(payload)["outputs"])  # the response names no version: any of them
            if not any(np.allclose(got, np.ravel(expected(v)), rtol=1e-6) for v in (1, 2, 3)):
                failures.append(f"REST: numbers of no version: {got[:4]}")
            rest_ok[0] += 1
        conn.close()

    threads = [threading.Thread(target=counted(client)) for _ in range(3)]
    threads.append(threading.Thread(target=counted(rest_client)))
    for t in threads:
        t.start()
    _wait(lambda: seen.get(1, 0) > 20)
    base_path(2)
    _wait(lambda: seen.get(2, 0) > 20)
    base_path(3)
    _wait(lambda: seen.get(3, 0) > 20)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    assert set(seen) == {1, 2, 3}
    assert rest_ok[0] > 0  # the REST stream ran alongside
    status = _status(s)
    assert status[3][0] == State.AVAILABLE
    assert status[1][0] == State.END and status[2][0] == State.END  # latest 1: older ones unloaded


def test_corrupt_version_is_reported_and_previous_keeps_serving(base_path, serve, stubs):
    base_path(1)
    server = serve(base=base_path.path)
    s = stubs(server)
    bad = os.path.join(base_path.path, ".tmp-bad")
    os.makedirs(bad)
    with open(os.path.join(bad, "saved_model.pb"), "wb") as fh:
        fh.write(b"\x08\x01this is not a SavedModel")
    os.rename(bad, os.path.join(base_path.path, "5"))
    _wait(lambda: 5 in _status(s))
    _wait(lambda: _status(s)[5][0] == State.END)
    state, code, message = _status(s)[5]
    assert code != 0 and "version 5" in message
    assert _status(s)[1][0] == State.AVAILABLE
    r = s.predict.Predict(predict_request())
    assert r.model_spec.version.value == 1
    with pytest.raises(grpc.RpcError) as err:
        s.predict.Predict(predict_request(version=5))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # a good version after the corrupt one is still picked up
    base_path(6, source=2)
    _wait(lambda: s.predict.Predict(predict_request()).model_spec.version.value == 6)


def test_failing_warmup_and_incompatible_signature_are_rejected(base_path, serve, stubs, tmp_path):
    base_path(1)
    server = serve(base=base_path.path, require_compatible_signatures=True)
    s = stubs(server)
    # version 2: the warm-up file holds a request the model rejects -> the load fails
    src = os.path.join(str(tmp_path), "v2")
    import shutil

    shutil.copytree(os.path.join(base_path.path, "1"), src)
    req = predict_request(rows={"cat": np.array([b"a"], dtype=object)})
    from tensorflow_serving.apis import prediction_log_pb2

    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=req))
    testing.write_warmup(src, [log.SerializeToString()])
    os.rename(src, os.path.join(base_path.path, "2"))
    _wait(lambda: _status(s).get(2, (0,))[0] == State.END)
    assert "input size does not match signature" in _status(s)[2][2]
    # version 3: a different model (other inputs) -> incompatible with the served version
    from recsys.compat import tf

    class Other(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="z")])
        def serve(self, z):
            return {"probability": tf.sigmoid(z)}

    other = Other()
    tf.saved_model.save(other, os.path.join(str(tmp_path), "v3"), signatures={"serving_default": other.serve})
    os.rename(os.path.join(str(tmp_path), "v3"), os.path.join(base_path.path, "3"))
    _wait(lambda: _status(s).get(3, (0,))[0] == State.END)
    assert _status(s)[3][1] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert "incompatible" in _status(s)[3][2]
    assert s.predict.Predict(predict_request()).model_spec.version.value == 1


@pytest.mark.parametrize(
    "policy,served",
    [
        ("latest { num_versions: 2 }", {2, 3}),
        ("all {}", {1, 2, 3}),
        ("specific { versions: 1 versions: 3 }", {1, 3}),
    ],
)
def test_version_policies(base_path, serve, stubs, policy, served):
    for v in (1, 2, 3):
        base_path(v)
    config = parse_config(
        f'model_config_list {{ config {{ name: "tiny" base_path: "{base_path.path}" '
        f'model_platform: "tensorflow" model_version_policy {{ {policy} }} }} }}'
    )
    server = serve(models=config)
    s = stubs(server)
    available = {v for v, st in _status(s).items() if st[0] == State.AVAILABLE}
    assert available == served
    for v in served:
        r = s.predict.Predict(predict_request(version=v))
        np.testing.assert_allclose(codec.to_numpy(r.outputs["probability"]), expected(v), rtol=1e-6)
    assert server.manager.view("tiny").servables.keys() == served


def test_removed_version_directory_is_unloaded(base_path, serve, stubs):
    import shutil

    base_path(1)
    base_path(2)
    server = serve(base=base_path.path)
    s = stubs(server)
    assert s.predict.Predict(predict_request()).model_spec.version.value == 2
    shutil.rmtree(os.path.join(base_path.path, "2"))
    _wait(lambda: s.predict.Predict(predict_request()).model_spec.version.value == 1)


def test_failed_load_is_retried_and_missing_base_path_keeps_serving(base_path, serve, stubs, exported):
    import shutil

    base_path(1)
    server = serve(base=base_path.path, load_retry_interval_seconds=0.2, max_num_load_retries=50)
    s = stubs(server)
    v2 = os.path.join(base_path.path, "2")
    os.makedirs(v2)  # a non-atomic writer: the directory appears before its files
    Path(v2, "saved_model.pb").write_bytes(b"partial")
    _wait(lambda: _status(s).get(2, (0,))[0] == State.END)
    for entry in os.listdir(exported[2]):  # the writer finishes (in place, same directory)
        src = os.path.join(exported[2], entry)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(v2, entry))
        else:
            shutil.copyfile(src, os.path.join(v2, entry))
    _wait(lambda: s.predict.Predict(predict_request()).model_spec.version.value == 2)
    assert _status(s)[2][:2] == (State.AVAILABLE, 0)
    # the base path disappears (storage hiccup): the loaded version keeps serving
    moved = base_path.path + ".away"
    os.rename(base_path.path, moved)
    server.manager.poll_once()  # at least one poll sees the base path missing
    assert s.predict.Predict(predict_request()).model_spec.version.value == 2
    assert _status(s)[2][:2] == (State.AVAILABLE, 0)
    os.rename(moved, base_path.path)
    server.manager.poll_once()
    assert s.predict.Predict(predict_request()).model_spec.version.value == 2
