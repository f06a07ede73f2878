"""Structured fuzzing (hypothesis) of a real ``recsys serve`` process over TF Serving's request shapes.

REST: row (``instances``), columnar (``inputs``) and ``examples`` bodies, ``signature_name``, ``b64``
objects, nested lists, scalars, NaN/Infinity, huge integers, lone surrogates; then byte-level damage
(truncation, non-UTF-8, deep nesting) and every HTTP method on TF Serving's paths. gRPC: Predict,
Classify, Regress, MultiInference, GetModelMetadata, GetModelStatus with random TensorProtos (every
DataType, shapes, contents), missing and unknown inputs, model specs, and damaged request bytes.

Each front end gets a fixed number of requests (derandomized: the same ones on every run). Every
answer must be a client error or success, never HTTP 5xx / INTERNAL / UNKNOWN; the server log must
show no internal error and the process must still answer correctly at the end. The counts by status
are printed (``pytest -s``).
"""

from __future__ import annotations

import base64
import collections
import http.client
import json
import os
import signal
import subprocess
import sys

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tensorflow.core.example import example_pb2
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from recsys.launch.ports import free_ports
from serving import codec, testing
from tests.serving.conftest import ROWS, expected, predict_request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES_PER_FRONT_END = 200
LIMIT = 1 << 18  # REST body and gRPC message limit of the fuzzed server, set through the CLI flags
FUZZ = settings(
    max_examples=EXAMPLES_PER_FRONT_END,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
C = grpc.StatusCode
GRPC_ALLOWED = {C.OK, C.INVALID_ARGUMENT, C.NOT_FOUND, C.FAILED_PRECONDITION, C.RESOURCE_EXHAUSTED}
REST_ALLOWED = {200, 400, 404, 413}
GOOD_ROWS = [
    {"cat": c.decode(), "x1": float(a), "x2": float(b)}
    for c, a, b in zip(ROWS["cat"], ROWS["x1"], ROWS["x2"], strict=True)
]
COUNTS: dict[str, collections.Counter] = {"rest": collections.Counter(), "grpc": collections.Counter()}


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    """``recsys serve`` on versions 1 and 2 (label stable=1), small limits from the CLI flags."""
    root = tmp_path_factory.mktemp("fuzz")
    base = str(root / "tiny")
    for v in (1, 2):
        testing.copy_version(exported[v], base, v)
    config = root / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "tiny" base_path: "{base}" model_platform: "tensorflow" '
        'model_version_policy { all {} } version_labels { key: "stable" value: 1 } } }'
    )
    (rest_port,) = free_ports(1)
    log_path = root / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "recsys.cli",
                "serve",
                "--port=0",
                f"--rest_api_port={rest_port}",
                f"--model_config_file={config}",
                f"--grpc_channel_arguments=grpc.max_receive_message_length={LIMIT}",
                f"--rest_api_max_body_bytes={LIMIT}",
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=REPO,
        )
    try:
        line = proc.stdout.readline()
        assert line.startswith("recsys serve: ready grpc=127.0.0.1:"), (line, log_path.read_text())
        grpc_address = line.split("grpc=")[1].split()[0]
        channel = grpc.insecure_channel(grpc_address)
        yield proc, grpc_address, rest_port, channel, log_path
        channel.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


# ---- REST -----------------------------------------------------------------------------------------
def _b64():
    return st.one_of(
        st.binary(max_size=8).map(lambda b: {"b64": base64.b64encode(b).decode()}),
        st.sampled_from([{"b64": "!!"}, {"b64": "YQ="}, {"b64": 5}, {"b64": "\u00e9"}, {"b64": None}]),
    )


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["a", "b", "c", "zz", "", "\ud800", "é", "[[[", 10**400]),
    st.text(max_size=6),
    _b64(),
)
KEYS = ["cat", "x1", "x2", "inputs", "instances", "examples", "signature_name", "b64", "context", "junk"]
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=10,
)
NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), JSON)
STRING = st.one_of(st.sampled_from(["a", "b", "c", "zz"]), _b64(), JSON)
ROW = st.one_of(
    st.fixed_dictionaries({"cat": STRING, "x1": NUMBER, "x2": NUMBER}),
    st.dictionaries(st.sampled_from(["cat", "x1", "x2", "junk"]), JSON, max_size=4),
    JSON,
)
COLUMNS = st.one_of(
    st.integers(0, 4).flatmap(
        lambda n: st.fixed_dictionaries(
            {
                "cat": st.lists(STRING, min_size=n, max_size=n),
                "x1": st.lists(NUMBER, min_size=n, max_size=n),
                "x2": st.one_of(st.lists(NUMBER, min_size=n, max_size=n), NUMBER),
            }
        )
    ),
    JSON,
)
FEATURES = st.dictionaries(st.sampled_from(["cat", "x1", "x2", "other", "\udc00"]), JSON, max_size=4)
SIGNATURE = st.one_of(
    st.just({}),
    st.sampled_from(["", "serving_default", "regress", "classify", "predict_examples", "nope"]).map(
        lambda s: {"signature_name": s}
    ),
    JSON.map(lambda v: {"signature_name": v}),
)
GOOD_STRING = st.one_of(
    st.text(max_size=5),
    st.text(max_size=5),
    st.binary(max_size=5).map(lambda b: {"b64": base64.b64encode(b).decode()}),
    st.binary(max_size=5).map(lambda b: {"b64": base64.b64encode(b).decode()}),
    st.text(max_size=3).map(lambda t: t + "\ud800"),  # a lone surrogate: valid JSON, not valid Unicode
)
GOOD_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-(2**24), 2**24)
)
VALID_ROWS = st.lists(
    st.fixed_dictionaries({"cat": GOOD_STRING, "x1": GOOD_NUMBER, "x2": GOOD_NUMBER}), max_size=5
)
VALID_BODY = st.one_of(
    VALID_ROWS.map(lambda rows: {"instances": rows}),
    VALID_ROWS.map(lambda rows: {"inputs": {k: [r[k] for r in rows] for k in ("cat", "x1", "x2")}}),
)
BODY = st.one_of(
    VALID_BODY,
    st.tuples(st.lists(ROW, max_size=4), SIGNATURE).map(lambda t: {"instances": t[0], **t[1]}),
    st.tuples(COLUMNS, SIGNATURE).map(lambda t: {"inputs": t[0], **t[1]}),
    st.tuples(st.lists(FEATURES, max_size=3), FEATURES, SIGNATURE).map(
        lambda t: {"examples": t[0], "context": t[1], **t[2]}
    ),
    st.just({"instances": GOOD_ROWS}),
    JSON,
)
PATHS = [
    "/v1/models/tiny:predict",
    "/v1/models/tiny/versions/1:predict",
    "/v1/models/tiny/versions/2:regress",
    "/v1/models/tiny/labels/stable:classify",
    "/v1/models/tiny/labels/nope:predict",
    "/v1/models/tiny/versions/99999999999999999999:predict",
    "/v1/models/tiny:regress",
    "/v1/models/tiny:classify",
    "/v1/models/nope:predict",
    "/v1/models/%74iny:predict",
    "/v1/models/%FF:predict",
    "/v1/models/tiny",
    "/v1/models/tiny/metadata",
    "/v1/models/tiny/versions/1/metadata",
    "/v1/models/tiny:explode",
    "/v1/models//:predict",
    "/v2/models/tiny:predict",
    "/monitoring/prometheus/metrics",
    "/",
]


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """The serialized body, whole or damaged: cut, non-UTF-8 bytes spliced in, or nested deep."""
    kind = draw(st.sampled_from(["whole", "whole", "whole", "cut", "splice", "deep"]))
    if kind == "cut" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == "splice":
        pos = draw(st.integers(0, len(data)))
        junk = draw(
            st.sampled_from([b"\xff", b"\xc3(", b"\x00", b"\\u00", b'"', b"]", b"1e999", b"\xed\xa0\x80"])
        )
        return data[:pos] + junk + data[pos:]
    if kind == "deep":
        depth = draw(st.sampled_from([99, 100, 101, 1000, 100_000]))
        return b'{"instances":' + b"[" * depth + data + b"]" * depth + b"}"
    return data


@st.composite
def rest_requests(draw) -> tuple[str, str, bytes]:
    if draw(st.integers(0, 3)) == 0:  # a request the model answers: any values, any batch size
        path = draw(
            st.sampled_from(
                PATHS[:2] + ["/v1/models/tiny/labels/stable:predict", "/v1/models/%74iny:predict"]
            )
        )
        return "POST", path, json.dumps(draw(VALID_BODY)).encode()
    method = draw(st.sampled_from(["POST"] * 8 + ["GET", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    path = draw(st.sampled_from(PATHS))
    body = json.dumps(draw(BODY)).encode()
    return method, path, draw(damaged(body))


def _rest(port: int, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


DEEP = b'{"instances":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def test_fuzz_rest(served):
    proc, _, rest_port, _, log_path = served

    @FUZZ
    @given(rest_requests())
    @example(("POST", "/v1/models/tiny:predict", DEEP))
    @example(("POST", "/v1/models/tiny:predict", b" " * (LIMIT + 1)))
    @example(("PUT", "/v1/models/tiny", b"{}"))
    @example(("DELETE", "/v1/models/tiny/versions/1", b""))
    def run(request):
        method, path, body = request
        status, payload = _rest(rest_port, method, path, body)
        COUNTS["rest"][status] += 1
        assert status in REST_ALLOWED, (status, payload[:300], request)
        if status != 200 and method != "HEAD":
            assert "error" in json.loads(payload)

    run()
    _print_counts("REST", COUNTS["rest"])
    assert COUNTS["rest"][200] > 0 and COUNTS["rest"][400] > 0 and COUNTS["rest"][413] > 0
    status, payload = _rest(
        rest_port, "POST", "/v1/models/tiny:predict", json.dumps({"instances": GOOD_ROWS}).encode()
    )
    assert status == 200 and proc.poll() is None
    np.testing.assert_allclose(json.loads(payload)["predictions"], expected(2), rtol=1e-6)
    _assert_clean_log(log_path)


# ---- gRPC -----------------------------------------------------------------------------------------
DTYPES = sorted(types_pb2.DataType.values()) + [10_000]
INT32 = st.integers(-(2**31), 2**31 - 1)
VALUE_FIELDS = {
    "float_val": st.floats(width=32, allow_nan=True, allow_infinity=True),
    "double_val": st.floats(allow_nan=True, allow_infinity=True),
    "int_val": INT32,
    "half_val": INT32,
    "int64_val": st.integers(-(2**63), 2**63 - 1),
    "uint32_val": st.integers(0, 2**32 - 1),
    "uint64_val": st.integers(0, 2**64 - 1),
    "bool_val": st.booleans(),
    "string_val": st.binary(max_size=6),
}

FIELD_OF = {  # the typed value field TensorFlow reads for each dtype
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
}


@st.composite
def tensors(draw) -> tensor_pb2.TensorProto:
    if draw(st.booleans()):  # well-formed tensors the model may accept: right names, random sizes/values
        n = draw(st.integers(0, 5))
        dtype = draw(
            st.sampled_from([np.float32, np.float64, np.int64, np.int32, np.bool_, np.float16, object])
        )
        if dtype is object:
            arr = np.array(draw(st.lists(st.binary(max_size=4), min_size=n, max_size=n)), dtype=object)
        else:
            values = draw(
                st.lists(
                    st.floats(allow_nan=True, allow_infinity=True, width=16),
                    min_size=n,
                    max_size=n,
                )
            )
            arr = np.array(values, dtype=np.float64)
            arr = np.nan_to_num(arr).astype(dtype) if np.dtype(dtype).kind in "iub" else arr.astype(dtype)
        if draw(st.booleans()) and n:
            arr = arr.reshape(draw(st.sampled_from([(n, 1), (1, n), (n,)])))
        return codec.from_numpy(arr.reshape(arr.shape or ()))
    t = tensor_pb2.TensorProto(dtype=draw(st.sampled_from(list(FIELD_OF) + DTYPES)))
    for d in draw(st.lists(st.sampled_from([0, 1, 2, 3, 4, -1, -7, 1 << 33]), max_size=4)):
        t.tensor_shape.dim.add(size=d)
    t.tensor_shape.unknown_rank = draw(st.booleans()) and draw(st.booleans())
    if draw(st.booleans()):
        t.tensor_content = draw(st.binary(max_size=40))
    else:
        field = FIELD_OF.get(t.dtype) if draw(st.booleans()) else None
        field = field or draw(st.sampled_from(sorted(VALUE_FIELDS)))
        getattr(t, field).extend(draw(st.lists(VALUE_FIELDS[field], max_size=6)))
    return t


@st.composite
def model_specs(draw) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(
        name=draw(st.sampled_from(["tiny", "tiny", "tiny", "nope", ""])),
        signature_name=draw(
            st.sampled_from(["", "", "serving_default", "regress", "classify", "predict_examples", "x"])
        ),
    )
    which = draw(st.sampled_from(["latest", "latest", "version", "label"]))
    if which == "version":
        spec.version.value = draw(st.sampled_from([1, 2, 3, 0, -1, 2**62]))
    elif which == "label":
        spec.version_label = draw(st.sampled_from(["stable", "canary", ""]))
    return spec


@st.composite
def tf_examples(draw) -> example_pb2.Example:
    ex = example_pb2.Example()
    for name in draw(st.lists(st.sampled_from(["cat", "x1", "x2", "other"]), max_size=4, unique=True)):
        feature = ex.features.feature[name]
        kind = draw(st.sampled_from(["float", "int", "bytes", "none"]))
        if kind == "float":
            feature.float_list.value.extend(draw(st.lists(VALUE_FIELDS["float_val"], max_size=3)))
        elif kind == "int":
            feature.int64_list.value.extend(draw(st.lists(VALUE_FIELDS["int64_val"], max_size=3)))
        elif kind == "bytes":
            feature.bytes_list.value.extend(draw(st.lists(st.binary(max_size=4), max_size=3)))
    return ex


@st.composite
def example_inputs(draw, message):
    request = message(model_spec=draw(model_specs()))
    kind = draw(st.sampled_from(["list", "context", "empty"]))
    if kind == "list":
        request.input.example_list.examples.extend(draw(st.lists(tf_examples(), max_size=3)))
    elif kind == "context":
        request.input.example_list_with_context.examples.extend(draw(st.lists(tf_examples(), max_size=3)))
        request.input.example_list_with_context.context.CopyFrom(draw(tf_examples()))
    return request


@st.composite
def valid_rows(draw) -> dict[str, np.ndarray]:
    """Inputs the model accepts: any batch size, any bytes, any float32 (NaN, infinities)."""
    n = draw(st.integers(0, 6))
    floats = st.lists(VALUE_FIELDS["float_val"], min_size=n, max_size=n)
    return {
        "cat": np.array(draw(st.lists(st.binary(max_size=5), min_size=n, max_size=n)), dtype=object).reshape(
            n
        ),
        "x1": np.array(draw(floats), np.float32).reshape(n),
        "x2": np.array(draw(floats), np.float32).reshape(n),
    }


@st.composite
def predict_requests(draw) -> predict_pb2.PredictRequest:
    """A valid request with random values, then none or some damage: specs, tensors, names, filters."""
    request = predict_request(rows=draw(valid_rows()))
    if draw(st.booleans()):
        return request
    if draw(st.booleans()):
        request.model_spec.CopyFrom(draw(model_specs()))
    for name in draw(
        st.lists(st.sampled_from(["cat", "x1", "x2", "inputs", "junk"]), max_size=3, unique=True)
    ):
        if draw(st.booleans()):
            request.inputs[name].CopyFrom(draw(tensors()))
        elif name in request.inputs:
            del request.inputs[name]
    request.output_filter.extend(
        draw(st.lists(st.sampled_from(["probability", "scores", "x", ""]), max_size=2))
    )
    return request


@st.composite
def grpc_calls(draw) -> tuple[str, bytes]:
    method = draw(
        st.sampled_from(
            ["Predict"] * 5
            + ["Classify", "Regress", "MultiInference", "GetModelMetadata", "GetModelStatus", "Raw"]
        )
    )
    if method == "Predict":
        message = draw(predict_requests())
    elif method == "Classify":
        message = draw(example_inputs(classification_pb2.ClassificationRequest))
    elif method == "Regress":
        message = draw(example_inputs(regression_pb2.RegressionRequest))
    elif method == "MultiInference":
        base = draw(example_inputs(regression_pb2.RegressionRequest))
        message = inference_pb2.MultiInferenceRequest(input=base.input)
        for _ in range(draw(st.integers(0, 2))):
            message.tasks.add(
                model_spec=draw(model_specs()),
                method_name=draw(
                    st.sampled_from(["tensorflow/serving/regress", "tensorflow/serving/classify", "x"])
                ),
            )
    elif method == "GetModelMetadata":
        message = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=draw(model_specs()),
            metadata_field=draw(st.lists(st.sampled_from(["signature_def", "x", ""]), max_size=2)),
        )
    elif method == "GetModelStatus":
        message = get_model_status_pb2.GetModelStatusRequest(model_spec=draw(model_specs()))
    else:  # damaged bytes of a valid Predict request
        data = bytearray(predict_request().SerializeToString(deterministic=True))
        for _ in range(draw(st.integers(1, 6))):
            pos = draw(st.integers(0, len(data) - 1))
            op = draw(st.sampled_from(["set", "del", "ins"]))
            if op == "set":
                data[pos] = draw(st.integers(0, 255))
            elif op == "del":
                del data[pos]
            else:
                data.insert(pos, draw(st.integers(0, 255)))
        return "Predict", bytes(data)
    return method, message.SerializeToString(deterministic=True)


SERVICE = {
    "GetModelStatus": "tensorflow.serving.ModelService",
}


def test_fuzz_grpc(served):
    proc, _, _, channel, log_path = served
    stubs = {}

    def call(method: str, data: bytes):
        if method not in stubs:
            service = SERVICE.get(method, "tensorflow.serving.PredictionService")
            stubs[method] = channel.unary_unary(
                f"/{service}/{method}", request_serializer=lambda b: b, response_deserializer=lambda b: b
            )
        return stubs[method](data, timeout=60)

    oversize = predict_request(
        rows={"cat": ROWS["cat"], "x1": np.ones(LIMIT // 4, np.float32), "x2": ROWS["x2"]}
    )

    @FUZZ
    @given(grpc_calls())
    @example(("Predict", oversize.SerializeToString()))
    @example(("Predict", b"\xff" * 64))
    def run(request):
        method, data = request
        try:
            call(method, data)
            code = C.OK
        except grpc.RpcError as err:
            code = err.code()
        COUNTS["grpc"][code.name] += 1
        assert code in GRPC_ALLOWED, (code, method)

    run()
    _print_counts("gRPC", COUNTS["grpc"])
    assert COUNTS["grpc"]["OK"] > 0 and COUNTS["grpc"]["INVALID_ARGUMENT"] > 0
    assert COUNTS["grpc"]["RESOURCE_EXHAUSTED"] > 0  # the --grpc_channel_arguments limit applies
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(predict_request(label="stable"), timeout=60)
    np.testing.assert_allclose(codec.to_numpy(response.outputs["probability"]), expected(1), rtol=1e-6)
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="tiny")), timeout=60
    )
    assert sorted(v.version for v in status.model_version_status) == [1, 2] and proc.poll() is None
    _assert_clean_log(log_path)


def _print_counts(front_end: str, counts: collections.Counter) -> None:
    by_status = {str(k): n for k, n in sorted(counts.items(), key=lambda kv: str(kv[0]))}
    print(f"\n{front_end} fuzz: {sum(counts.values())} requests by status {by_status}")


def _assert_clean_log(log_path) -> None:
    """The server never hit its catch-all (``internal error``) and printed no traceback."""
    text = log_path.read_text()
    assert "internal error" not in text and "Traceback" not in text, text[-3000:]
