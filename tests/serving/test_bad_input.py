"""Malformed and randomly fuzzed requests (gRPC and REST): the right status, no crash, still serving."""

from __future__ import annotations

import http.client
import json
import random

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)

from serving import codec, testing
from serving.model_config import single_model_config
from serving.server import ModelServer, ServerOptions
from tests.serving.conftest import ROWS, Stubs, expected, predict_request

C = grpc.StatusCode


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("bad") / "tiny")
    testing.copy_version(exported[1], base, 1)
    srv = ModelServer(
        ServerOptions(
            [single_model_config("tiny", base)],
            rest_api_port=0,
            max_receive_message_bytes=1 << 20,
            max_tensor_elements=1 << 20,
            max_rest_body_bytes=1 << 20,
        )
    ).start()
    yield srv
    srv.stop(grace=0.1)


@pytest.fixture(scope="module")
def s(server):
    stubs = Stubs(server.port)
    yield stubs
    stubs.channel.close()


def _tensor(dtype=types_pb2.DT_FLOAT, dims=(4,), **fields) -> tensor_pb2.TensorProto:
    t = tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]
        ),
    )
    for k, v in fields.items():
        if k == "tensor_content":
            t.tensor_content = v
        else:
            getattr(t, k).extend(v)
    return t


def _with(name, tensor) -> predict_pb2.PredictRequest:
    req = predict_request()
    req.inputs[name].CopyFrom(tensor)
    return req


def _cases():
    no_x2 = predict_request()
    del no_x2.inputs["x2"]
    extra = predict_request()
    extra.inputs["bogus"].CopyFrom(codec.from_numpy(np.ones(4, np.float32)))
    filt = predict_request()
    filt.output_filter.append("nope")
    no_name = predict_request(name="")
    return [
        ("unknown model", predict_request(name="nope"), C.NOT_FOUND, "Servable not found"),
        ("unknown version", predict_request(version=9), C.NOT_FOUND, "Specific(tiny, 9)"),
        ("unknown label", predict_request(label="nope"), C.INVALID_ARGUMENT, "version label"),
        ("unknown signature", predict_request(signature="nope"), C.FAILED_PRECONDITION, "not found"),
        ("missing input", no_x2, C.INVALID_ARGUMENT, "Missing but required: ['x2']"),
        ("extra input", extra, C.INVALID_ARGUMENT, "Sent extra: ['bogus']"),
        ("double for float", _with("x1", codec.from_numpy(np.ones(4))), C.INVALID_ARGUMENT, "expects float"),
        (
            "float for string",
            _with("cat", codec.from_numpy(np.ones(4, np.float32))),
            C.INVALID_ARGUMENT,
            "expects string",
        ),
        (
            "rank 2",
            _with("x1", codec.from_numpy(np.ones((4, 1), np.float32))),
            C.INVALID_ARGUMENT,
            "expects shape",
        ),
        (
            "batch mismatch",
            _with("x1", codec.from_numpy(np.ones(3, np.float32))),
            C.INVALID_ARGUMENT,
            "different batch sizes",
        ),
        (
            "content size",
            _with("x1", _tensor(tensor_content=b"\0" * 7)),
            C.INVALID_ARGUMENT,
            "tensor_content",
        ),
        ("too many values", _with("x1", _tensor(float_val=[1.0] * 9)), C.INVALID_ARGUMENT, "needs 4"),
        ("negative dim", _with("x1", _tensor(dims=(-4,), float_val=[1.0])), C.INVALID_ARGUMENT, "negative"),
        (
            "unsupported dtype",
            _with("x1", _tensor(dtype=types_pb2.DT_RESOURCE)),
            C.INVALID_ARGUMENT,
            "unsupported tensor dtype",
        ),
        ("huge shape", _with("x1", _tensor(dims=(1 << 40,))), C.RESOURCE_EXHAUSTED, "exceeds the limit"),
        (
            "oversize message",
            _with("x1", codec.from_numpy(np.ones(1 << 19, np.float32))),
            C.RESOURCE_EXHAUSTED,
            "",
        ),
        ("unknown output", filt, C.INVALID_ARGUMENT, "output tensor alias not found"),
        ("no model name", no_name, C.INVALID_ARGUMENT, "Missing ModelSpec name"),
    ]


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_predict_errors(s, case):
    _, request, code, needle = case
    with pytest.raises(grpc.RpcError) as err:
        s.predict.Predict(request, timeout=10)
    assert err.value.code() == code, err.value.details()
    assert needle in (err.value.details() or "")


def test_other_method_errors(s):
    with pytest.raises(grpc.RpcError) as err:
        s.predict.GetModelMetadata(
            get_model_metadata_pb2.GetModelMetadataRequest(
                model_spec=model_pb2.ModelSpec(name="tiny"), metadata_field=["nope"]
            )
        )
    assert err.value.code() == C.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        s.model.GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="nope"))
        )
    assert err.value.code() == C.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        s.predict.Classify(
            classification_pb2.ClassificationRequest(
                model_spec=model_pb2.ModelSpec(name="tiny", signature_name="classify")
            )
        )
    assert err.value.code() == C.INVALID_ARGUMENT and "Input is empty" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:  # the raw-feature signature cannot classify
        spec = model_pb2.ModelSpec(name="tiny", signature_name="serving_default")
        req = classification_pb2.ClassificationRequest(model_spec=spec)
        req.input.example_list.examples.add()
        s.predict.Classify(req)
    assert err.value.code() == C.FAILED_PRECONDITION


GOOD = {"cat", "x1", "x2"}
ALLOWED_GRPC = {C.OK, C.INVALID_ARGUMENT, C.NOT_FOUND, C.FAILED_PRECONDITION, C.RESOURCE_EXHAUSTED}


def _random_tensor(rng: random.Random) -> tensor_pb2.TensorProto:
    dtype = rng.choice(
        [
            types_pb2.DT_FLOAT,
            types_pb2.DT_DOUBLE,
            types_pb2.DT_STRING,
            types_pb2.DT_INT64,
            types_pb2.DT_INT32,
            types_pb2.DT_BOOL,
            types_pb2.DT_HALF,
            rng.randint(0, 40),
        ]
    )
    rank = rng.choice([0, 1, 1, 1, 2, 3])
    dims = [rng.choice([0, 1, 2, 3, 4, 5, -1, 1 << 33]) for _ in range(rank)]
    t = tensor_pb2.TensorProto(dtype=dtype)
    for d in dims:
        t.tensor_shape.dim.add(size=d)
    if rng.random() < 0.1:
        t.tensor_shape.unknown_rank = True
    n = rng.choice([0, 1, 2, 4, 7])
    kind = rng.random()
    if kind < 0.3:
        t.tensor_content = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 4, 8, 16, 13])))
    elif kind < 0.5:
        t.float_val.extend(rng.uniform(-1e30, 1e30) for _ in range(n))
    elif kind < 0.7:
        t.string_val.extend(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 5))) for _ in range(n))
    elif kind < 0.85:
        t.int64_val.extend(rng.randint(-(1 << 63), (1 << 63) - 1) for _ in range(n))
    else:
        t.int_val.extend(rng.randint(-(1 << 31), (1 << 31) - 1) for _ in range(n))
    return t


def test_fuzz_grpc(s):
    """2,000 random requests: structured nonsense and mutated bytes of a valid request."""
    rng = random.Random(1234)
    valid = predict_request().SerializeToString()
    raw = s.channel.unary_unary(
        "/tensorflow.serving.PredictionService/Predict",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    codes = {}
    for i in range(2000):
        try:
            if i % 2 == 0:
                req = predict_request(
                    name=rng.choice(["tiny", "tiny", "nope", ""]),
                    signature=rng.choice(["", "", "serving_default", "regress", "x"]),
                )
                for name in rng.sample(sorted(GOOD | {"junk"}), rng.randint(0, 4)):
                    if rng.random() < 0.5:
                        req.inputs[name].CopyFrom(_random_tensor(rng))
                    elif name in req.inputs:
                        del req.inputs[name]
                if rng.random() < 0.2:
                    req.output_filter.append(rng.choice(["probability", "x", ""]))
                s.predict.Predict(req, timeout=10)
            else:
                data = bytearray(valid)
                for _ in range(rng.randint(1, 8)):
                    op = rng.random()
                    pos = rng.randrange(len(data))
                    if op < 0.5:
                        data[pos] = rng.getrandbits(8)
                    elif op < 0.75:
                        del data[pos]
                    else:
                        data.insert(pos, rng.getrandbits(8))
                raw(bytes(data), timeout=10)
            code = C.OK
        except grpc.RpcError as err:
            code = err.code()
        codes[code] = codes.get(code, 0) + 1
    assert set(codes) <= ALLOWED_GRPC, codes
    assert codes.get(C.INVALID_ARGUMENT, 0) > 500
    r = s.predict.Predict(predict_request())
    np.testing.assert_allclose(codec.to_numpy(r.outputs["probability"]), expected(1), rtol=1e-6)


def _random_json(rng: random.Random, depth: int = 0):
    choice = rng.random()
    if depth > 3 or choice < 0.35:
        return rng.choice(
            [
                None,
                True,
                False,
                0,
                -1,
                1.5,
                1e308,
                -1e308,
                2**70,
                "",
                "a",
                "zz",
                {"b64": "YQ=="},
                {"b64": "!!"},
                float("nan"),
            ]
        )
    if choice < 0.7:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["cat", "x1", "x2", "instances", "inputs", "signature_name", "b64", "junk", "examples"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def test_fuzz_rest(server):
    """1,500 random bodies and paths: only 200/400/404/413 answers, never a 5xx, still serving."""
    rng = random.Random(99)
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    good = {
        "instances": [
            {"cat": c.decode(), "x1": float(a), "x2": float(b)}
            for c, a, b in zip(ROWS["cat"], ROWS["x1"], ROWS["x2"], strict=True)
        ]
    }
    paths = [
        "/v1/models/tiny:predict",
        "/v1/models/tiny/versions/1:predict",
        "/v1/models/tiny:regress",
        "/v1/models/tiny:classify",
        "/v1/models/nope:predict",
        "/v1/models/tiny/labels/x:predict",
        "/v1/models/tiny/versions/abc:predict",
        "/v1/models//:predict",
        "/v1/models/tiny:explode",
    ]
    statuses = {}
    for i in range(1500):
        path = rng.choice(paths)
        if i % 3 == 0:
            body = {
                "instances": [
                    {k: _random_json(rng) for k in rng.sample(["cat", "x1", "x2", "q"], 3)}
                    for _ in range(rng.randint(1, 3))
                ]
            }
        elif i % 3 == 1:
            body = _random_json(rng)
        else:
            text = json.dumps(good)
            pos = rng.randrange(len(text))
            body = None
            data = (
                text[:pos]
                + rng.choice(["", "}", "[", '"', "\\u00", "\x00", "1e999"])
                + text[pos + rng.randint(0, 5) :]
            ).encode("utf-8", "surrogatepass")
        if body is not None:
            data = json.dumps(body).encode()
        conn.request("POST", path, body=data)
        resp = conn.getresponse()
        payload = resp.read()
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        if resp.status != 200:
            assert "error" in json.loads(payload)
    assert set(statuses) <= {200, 400, 404, 413}, statuses
    conn.request("POST", "/v1/models/tiny:predict", body=json.dumps(good))
    resp = conn.getresponse()
    assert resp.status == 200
    np.testing.assert_allclose(json.loads(resp.read())["predictions"], expected(1), rtol=1e-6)
    conn.close()
