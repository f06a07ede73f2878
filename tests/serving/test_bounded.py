"""Bounded work per request: what a request declares is checked and priced before anything is decoded."""

from __future__ import annotations

import http.client
import json
import time
import tracemalloc

import grpc
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2

from serving import codec, jsonparse
from serving.batching import BatchingParameters
from tests.serving.conftest import ROWS, Stubs, expected, predict_request

C = grpc.StatusCode
MB = 1 << 20


def _broadcast(dtype: int, declared: int, value_field: str, value) -> tensor_pb2.TensorProto:
    """A tensor declaring ``declared`` elements and carrying one value (TF broadcasts it)."""
    t = tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=declared)]),
    )
    getattr(t, value_field).append(value)
    return t


def _attack(model: str, names: list[str]) -> predict_pb2.PredictRequest:
    req = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model))
    for name in names:
        req.inputs[name].CopyFrom(_broadcast(types_pb2.DT_FLOAT, 1 << 24, "float_val", 1.0))
    return req


def _until(predicate, timeout: float = 60.0) -> None:
    """Wait for a condition of the server's state (polled: the batcher does not signal these)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def _peak_bytes_during(call) -> tuple[BaseException | None, int]:
    """Run ``call`` with tracemalloc on (numpy reports its arrays to it): (the error raised, peak bytes)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        call()
        error = None
    except grpc.RpcError as err:
        error = err
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return error, peak - base


@pytest.fixture
def server(base_path, serve):
    base_path(1)
    return serve(base=base_path.path, rest_api_port=0)


def test_the_small_attack_on_a_missing_model_allocates_nothing(server):
    """8 inputs x 2^24 declared floats, one value each, in a ~250-byte message: NOT_FOUND, no decoding."""
    req = _attack("nope", [f"i{k}" for k in range(8)])
    assert len(req.SerializeToString()) < 300
    s = Stubs(server.port)
    error, peak = _peak_bytes_during(lambda: s.predict.Predict(req, timeout=60))
    s.channel.close()
    assert error is not None and error.code() == C.NOT_FOUND
    assert peak < 50 * MB, f"peak {peak / MB:.0f} MB"


def test_declared_elements_over_the_request_cap_are_refused_before_decoding(server):
    """The model's own input names, each declaring 2^24 values: RESOURCE_EXHAUSTED, nothing allocated."""
    req = _attack("tiny", ["x1", "x2"])
    req.inputs["cat"].CopyFrom(_broadcast(types_pb2.DT_STRING, 1 << 24, "string_val", b"a"))
    s = Stubs(server.port)
    error, peak = _peak_bytes_during(lambda: s.predict.Predict(req, timeout=60))
    s.channel.close()
    assert error is not None and error.code() == C.RESOURCE_EXHAUSTED
    assert "--max_request_elements" in error.details()
    assert peak < 50 * MB, f"peak {peak / MB:.0f} MB"


def test_a_wrong_name_or_dtype_is_refused_before_decoding(server):
    s = Stubs(server.port)
    wrong_name = _attack("tiny", ["x1", "x2", "nope"])
    error, peak = _peak_bytes_during(lambda: s.predict.Predict(wrong_name, timeout=60))
    assert error is not None and error.code() == C.INVALID_ARGUMENT
    assert "Sent extra: ['nope']" in error.details()
    assert peak < 50 * MB
    wrong_dtype = predict_request()
    # cat is a string input
    wrong_dtype.inputs["cat"].CopyFrom(_broadcast(types_pb2.DT_FLOAT, 1 << 24, "float_val", 1.0))
    error, peak = _peak_bytes_during(lambda: s.predict.Predict(wrong_dtype, timeout=60))
    s.channel.close()
    assert error is not None and error.code() == C.INVALID_ARGUMENT
    assert "input 'cat' expects string but got float32" in error.details()
    assert peak < 50 * MB


def test_the_cap_is_a_setting_and_rest_answers_413(base_path, serve):
    base_path(1)
    server = serve(base=base_path.path, rest_api_port=0, max_request_elements=12)
    s = Stubs(server.port)
    assert s.predict.Predict(predict_request()).outputs["probability"].tensor_shape.dim[0].size == 4  # 12
    rows = {"cat": ["a"] * 5, "x1": [1.0] * 5, "x2": [2.0] * 5}  # 15 values
    arrays = {k: np.array(v, dtype=object if k == "cat" else np.float32) for k, v in rows.items()}
    with pytest.raises(grpc.RpcError) as err:
        s.predict.Predict(predict_request(rows=arrays))
    s.channel.close()
    assert err.value.code() == C.RESOURCE_EXHAUSTED
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
    conn.request("POST", "/v1/models/tiny:predict", json.dumps({"inputs": rows}))
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    assert resp.status == 413, body
    assert "15 values, more than the limit of 12" in body["error"]


def test_a_request_whose_deadline_passes_in_the_batch_queue_is_not_run(base_path, serve):
    """The batch waits 1.5 s for company; the client's 0.3 s deadline passes first: the batch runs empty."""
    base_path(1)
    params = BatchingParameters(max_batch_size=1000, batch_timeout_micros=1_500_000, num_batch_threads=1)
    server = serve(base=base_path.path, batching=params)
    s = Stubs(server.port)
    with pytest.raises(grpc.RpcError) as err:
        s.predict.Predict(predict_request(), timeout=0.3)
    s.channel.close()
    assert err.value.code() == C.DEADLINE_EXCEEDED
    batcher = server.batcher
    assert batcher is not None
    _until(lambda: batcher.tasks_expired == 1)
    # the batch's turn came (its timeout passed) and it ran without the expired request
    _until(lambda: not batcher._open and not batcher._ready and batcher._running == 0)
    assert batcher.tasks_run == 0


def test_requests_in_progress_share_one_memory_budget(base_path, serve):
    """A queued request holds its decoded bytes; a second one over the budget gets RESOURCE_EXHAUSTED."""
    base_path(1)
    params = BatchingParameters(max_batch_size=4, batch_timeout_micros=30_000_000, num_batch_threads=1)
    server = serve(base=base_path.path, batching=params, max_inflight_decoded_bytes=100)
    s = Stubs(server.port)
    two_rows = {k: v[:2] for k, v in ROWS.items()}
    waiting = s.predict.Predict.future(predict_request(rows=two_rows), timeout=2.0)  # waits for 2 more rows
    batcher = server.batcher
    assert batcher is not None
    _until(lambda: server.core.in_flight.used > 0)
    with pytest.raises(grpc.RpcError) as err:
        s.predict.Predict(predict_request(), timeout=60)
    assert err.value.code() == C.RESOURCE_EXHAUSTED
    assert "--max_inflight_decoded_bytes" in err.value.details()
    assert waiting.exception().code() == C.DEADLINE_EXCEEDED
    _until(lambda: server.core.in_flight.used == 0)  # the expired request let go of its bytes
    r = s.predict.Predict(predict_request(), timeout=60)
    np.testing.assert_allclose(codec.to_numpy(r.outputs["probability"]), expected(1), rtol=1e-6)
    assert server.core.in_flight.refused == 1
    s.channel.close()


def test_a_rest_body_with_too_many_values_is_refused_before_it_is_parsed(base_path, serve):
    """2^21 values (8 MB of JSON, under the body cap) to a server capped at 1,000 values: 413 from a
    count of the body's commas, before the parser builds a Python float per value (~30 bytes each)."""
    base_path(1)
    server = serve(base=base_path.path, rest_api_port=0, max_request_elements=1000)
    values = 1 << 21
    # an input the model does not have: a parsed body would be refused for its name (400), after parsing
    body = b'{"inputs": {"nope": [' + b"0.5," * (values - 1) + b'0.5], "why": "a,b"}}'
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)

    def post():
        conn.request("POST", "/v1/models/tiny:predict", body)
        resp = conn.getresponse()
        post.result = resp.status, json.loads(resp.read())  # type: ignore[attr-defined]

    _, peak = _peak_bytes_during(post)
    status, answer = post.result  # type: ignore[attr-defined]
    assert status == 413, answer
    assert answer["error"] == (
        f"the request body holds {values + 1} values, more than the limit of 1064 "
        "(--max_request_elements); send fewer rows per request"
    )
    assert peak < 3 * len(body), f"peak {peak / MB:.0f} MB for a {len(body) / MB:.0f} MB body"
    # at the limit the body is parsed and served
    rows = {"cat": ["a"] * 300, "x1": [1.0] * 300, "x2": [2.0] * 300}
    conn.request("POST", "/v1/models/tiny:predict", json.dumps({"inputs": rows}))
    resp = conn.getresponse()
    assert resp.status == 200 and len(json.loads(resp.read())["outputs"]) == 300
    conn.close()


def _scalars(value) -> int:
    if isinstance(value, list):
        return sum(_scalars(v) for v in value)
    if isinstance(value, dict):
        return sum(_scalars(v) for v in value.values())
    return 1


_TEXT = st.text(alphabet=st.sampled_from(list('ab,"\\[]{} \n\u00e9')), max_size=6)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(value=st.lists(_JSON, max_size=3), indent=st.sampled_from([None, 1]), ascii_only=st.booleans(),
       chunk=st.sampled_from([1, 3, 1 << 20]))  # fmt: skip
def test_the_value_count_before_parsing_is_exact(value, indent, ascii_only, chunk):
    """Commas, quotes, escapes, brackets inside strings, empty containers and chunk boundaries."""
    raw = json.dumps(value, indent=indent, ensure_ascii=ascii_only).encode()
    assert jsonparse.count_values(raw, chunk) == _scalars(value)
