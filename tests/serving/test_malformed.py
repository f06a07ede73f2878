"""Hostile REST and gRPC requests, one by one: TF Serving's 4xx / status code, never a 5xx or INTERNAL."""

from __future__ import annotations

import http.client
import json
import socket

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, types_pb2

from serving import codec, jsonparse, testing
from serving.errors import ServingError
from serving.model_config import single_model_config
from serving.server import ModelServer, ServerOptions, parse_channel_arguments
from tests.serving.conftest import ROWS, Stubs, expected, predict_request

GOOD = {
    "instances": [
        {"cat": c.decode(), "x1": float(a), "x2": float(b)}
        for c, a, b in zip(ROWS["cat"], ROWS["x1"], ROWS["x2"], strict=True)
    ]
}
PREDICT = "/v1/models/tiny:predict"


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("malformed") / "tiny")
    testing.copy_version(exported[1], base, 1)
    srv = ModelServer(
        ServerOptions([single_model_config("tiny", base)], rest_api_port=0, max_rest_body_bytes=1 << 20)
    ).start()
    yield srv
    srv.stop(grace=0.1)


def _call(server, method: str, path: str, body: bytes | None = None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        payload = resp.read()
        return resp.status, payload, resp
    finally:
        conn.close()


def _raw(server, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=30) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def _deep(n: int, open_: bytes = b"[", close: bytes = b"]", leaf: bytes = b"1.0") -> bytes:
    return open_ * n + leaf + close * n


def _row(**override) -> bytes:
    row = {"cat": "a", "x1": 1.0, "x2": 2.0, **override}
    return json.dumps({"instances": [row]}).encode()


BAD_BODIES = [
    ("100k nested lists", b'{"instances":' + _deep(100_000) + b"}", "nesting depth 100001 exceeds"),
    ("100k nested objects", b'{"instances":' + _deep(100_000, b'{"a":', b"}") + b"}", "nesting depth"),
    (
        "500 nested strings",
        b'{"instances":[{"cat":' + _deep(500, leaf=b'"a"') + b',"x1":1,"x2":1}]}',
        "nesting",
    ),
    ("70 nested numbers", b'{"inputs":{"cat":["a"],"x1":' + _deep(70) + b',"x2":[1]}}', "x1"),
    (
        "5000-digit integer",
        b'{"instances":[{"cat":"a","x1":' + b"7" * 5000 + b',"x2":1}]}',
        "JSON Parse error",
    ),
    ("non-UTF-8 string", b'{"instances":[{"cat":"\xff\xfe","x1":1,"x2":1}]}', "JSON Parse error"),
    ("lone surrogate", _row(cat="\ud800"), "not valid Unicode"),
    (
        "surrogate feature name",
        b'{"signature_name":"regress","examples":[{"\\udfff":1}]}',
        "not valid Unicode",
    ),
    ("bad base64", _row(cat={"b64": "!!"}), "Unable to base64 decode"),
    ("non-ASCII base64", _row(cat={"b64": "\u00e9"}), "Unable to base64 decode"),
    ("b64 not a string", _row(cat={"b64": 5}), "not formatted correctly for string data"),
    ("number for string", _row(cat=5), "not formatted correctly for string data"),
    ("string for float", _row(x1="one"), "expects float"),
    ("bool for float", _row(x1=True), "expects float"),
    ("null for float", _row(x1=None), "expects float"),
    ("float overflow", _row(x1=1e39), "out of range for float"),
    (
        "int64 overflow in examples",
        b'{"signature_name":"regress","examples":[{"x1":' + b"9" * 30 + b"}]}",
        "int64",
    ),
    ("NaN signature_name", b'{"signature_name":NaN,"instances":[1]}', "'signature_name' must be a string"),
    ("empty body", b"", "JSON Parse error"),
    ("NUL byte", b"\x00", "JSON Parse error"),
    ("trailing garbage", json.dumps(GOOD).encode() + b"xx", "JSON Parse error"),
    ("top-level list", b"[1,2]", "JSON object"),
    ("ragged strings", b'{"inputs":{"cat":[["a"],["a","b"]],"x1":[1,2],"x2":[1,2]}}', "regular nested list"),
]


@pytest.mark.parametrize("case", BAD_BODIES, ids=lambda c: c[0])
def test_bad_bodies_get_400(server, case):
    _, body, needle = case
    status, payload, _ = _call(
        server, "POST", PREDICT if b"examples" not in body else "/v1/models/tiny:regress", body
    )
    assert status == 400, payload[:300]
    assert needle in json.loads(payload)["error"]


def test_nan_and_infinity_are_missing_values_for_floats(server):
    """As in TF Serving (rapidjson kParseNanAndInfFlag): NaN/Infinity are numbers for float inputs."""
    status, payload, _ = _call(
        server, "POST", PREDICT, b'{"inputs":{"cat":["a"],"x1":[Infinity],"x2":[NaN]}}'
    )
    assert status == 200, payload
    assert np.isnan(json.loads(payload)["outputs"][0])


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FROB"])
def test_unknown_methods_are_malformed_requests(server, method):
    """TF Serving answers any method it cannot route under /v1/ with 400 and 404 elsewhere; no 501."""
    status, payload, _ = _call(server, method, PREDICT, b"{}")
    assert status == 400 and json.loads(payload)["error"] == f"Malformed request: {method} {PREDICT}"
    status, payload, _ = _call(server, method, "/elsewhere", b"{}")
    assert status == 404 and "Malformed request" in json.loads(payload)["error"]


def test_head_gets_a_status_without_a_body(server):
    status, payload, resp = _call(server, "HEAD", "/v1/models/tiny")
    assert status == 400 and payload == b"" and int(resp.getheader("Content-Length")) > 0


@pytest.mark.parametrize(
    "path,status,needle",
    [
        ("/v1/models/tiny/versions/99999999999999999999", 400, "Failed to convert version"),
        ("/v1/models/tiny/versions/9223372036854775808:predict", 400, "Failed to convert version"),
        ("/v1/models/%ZZ", 404, "Could not find any versions of model %ZZ"),
        ("/v1/models/%FF%FE", 400, "Failed to decode model name"),
        ("/v1/models/tiny/labels/%FF", 400, "Failed to decode model version label"),
        ("/v1/models/tiny/versions/1/extra", 400, "Malformed request"),
        ("/v1/", 400, "Malformed request"),
        ("/", 404, "Malformed request"),
    ],
)
def test_bad_paths(server, path, status, needle):
    got, payload, _ = _call(server, "POST" if path.endswith(":predict") else "GET", path, b"{}")
    assert got == status and needle in json.loads(payload)["error"], payload


def test_percent_encoded_model_name_is_decoded(server):
    status, payload, _ = _call(server, "POST", "/v1/models/%74iny:predict", json.dumps(GOOD).encode())
    assert status == 200
    np.testing.assert_allclose(json.loads(payload)["predictions"], expected(1), rtol=1e-6)


def test_chunked_body_is_read_and_limited(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    data = json.dumps(GOOD).encode()
    conn.request("POST", PREDICT, body=iter([data[:10], data[10:]]), encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 200
    np.testing.assert_allclose(json.loads(resp.read())["predictions"], expected(1), rtol=1e-6)
    conn.close()
    reply = _raw(
        server, b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 400") and b"invalid chunked encoding" in reply
    # a chunk announced above the limit is refused before its data is read
    reply = _raw(
        server, b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 413") and b"exceeds the limit of 1048576" in reply


def test_body_over_the_limit_gets_413(server):
    """Refused from the Content-Length, before the body is read; the connection is closed."""
    head = b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % ((1 << 20) + 1)
    reply = _raw(server, head)
    assert reply.startswith(b"HTTP/1.1 413") and b"exceeds the limit of 1048576" in reply


@pytest.mark.parametrize(
    "request_bytes,status",
    [
        (b"GET / HTTP/2.0\r\n\r\n", b"HTTP/1.1 400"),
        (b"GET /\r\n\r\n", b"HTTP/1.1 400"),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", b"HTTP/1.1 400"),
        (b"GET /v1/models/\xff HTTP/1.1\r\n\r\n", b"HTTP/1.1 400"),
        (b"POST /v1/models/tiny:predict HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"HTTP/1.1 400"),
        (b"POST /v1/models/tiny:predict HTTP/1.1\r\nContent-Length: -5\r\n\r\n", b"HTTP/1.1 400"),
    ],
)
def test_broken_http_gets_400(server, request_bytes, status):
    assert _raw(server, request_bytes).startswith(status)


def test_depth_scan_ignores_brackets_in_strings():
    assert jsonparse.nesting_depth(b'{"a":"[[[[\\"[[[[","b":[[1]]}') == 3
    assert jsonparse.nesting_depth(b"[]" * 1000) == 1
    body = json.dumps({"instances": [{"cat": "[" * 500, "x1": 1, "x2": 1}]}).encode()
    assert jsonparse.loads(body)["instances"][0]["cat"] == "[" * 500


def test_grpc_half_values_out_of_range_are_invalid(server):
    s = Stubs(server.port)
    req = predict_request()
    bad = tensor_pb2.TensorProto(dtype=types_pb2.DT_HALF)
    bad.tensor_shape.dim.add(size=1)
    bad.half_val.append(70000)
    req.inputs["x1"].CopyFrom(bad)
    with pytest.raises(grpc.RpcError) as err:
        s.predict.Predict(req, timeout=30)
    # the signature's dtype is checked before decoding: the half tensor never reaches the decoder
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input 'x1' expects float but got float16" in err.value.details()
    with pytest.raises(ServingError, match="out of range"):  # what decoding it would have said
        codec.to_numpy(bad)
    r = s.predict.Predict(predict_request(), timeout=30)
    np.testing.assert_allclose(codec.to_numpy(r.outputs["probability"]), expected(1), rtol=1e-6)
    s.channel.close()


def test_channel_arguments_parse_like_tf_serving():
    assert parse_channel_arguments("grpc.max_receive_message_length=1024,grpc.primary_user_agent=x") == [
        ("grpc.max_receive_message_length", 1024),
        ("grpc.primary_user_agent", "x"),
    ]
    assert parse_channel_arguments("") == []
    with pytest.raises(ValueError, match="expected key=value"):
        parse_channel_arguments("grpc.max_receive_message_length")


def test_grpc_unknown_method_is_unimplemented(server):
    """A method the server does not have (TF Serving's SessionService, a typo) -> UNIMPLEMENTED."""
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        for method in (
            "/tensorflow.serving.SessionService/SessionRun",
            "/tensorflow.serving.PredictionService/Predikt",
        ):
            call = channel.unary_unary(
                method, request_serializer=lambda b: b, response_deserializer=lambda b: b
            )
            with pytest.raises(grpc.RpcError) as err:
                call(b"", timeout=30)
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_moderately_large_body_is_drained_and_the_connection_reused(server):
    """A body a little above the limit is read to its end: the client gets its 413, keeps its connection."""
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    conn.request("POST", PREDICT, body=b" " * (3 << 20))
    resp = conn.getresponse()
    assert resp.status == 413 and "exceeds the limit of 1048576" in json.loads(resp.read())["error"]
    conn.request("POST", PREDICT, body=json.dumps(GOOD).encode())
    resp = conn.getresponse()
    assert resp.status == 200
    np.testing.assert_allclose(json.loads(resp.read())["predictions"], expected(1), rtol=1e-6)
    conn.close()
