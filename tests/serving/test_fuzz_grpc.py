"""Structured fuzzing (hypothesis) of a live ``recsys serve``: the gRPC half (REST: test_fuzz_rest.py).

Predict, Classify, Regress, MultiInference, GetModelMetadata, GetModelStatus with random TensorProtos
(every DataType, shapes, contents), missing and unknown inputs, model specs, and damaged request bytes.
What every answer must be: tests/serving/fuzz_server.py.
"""

from __future__ import annotations

import collections

import grpc
import numpy as np
import pytest
from hypothesis import example, given
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

from serving import codec
from tests.serving import fuzz_server
from tests.serving.conftest import ROWS, expected, predict_request
from tests.serving.fuzz_server import FUZZ, LIMIT

C = grpc.StatusCode
GRPC_ALLOWED = {C.OK, C.INVALID_ARGUMENT, C.NOT_FOUND, C.FAILED_PRECONDITION, C.RESOURCE_EXHAUSTED}
COUNTS: collections.Counter = collections.Counter()


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    """``recsys serve`` on versions 1 and 2 (label stable=1), small limits from the CLI flags."""
    yield from fuzz_server.serve(exported, tmp_path_factory)


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
        COUNTS[code.name] += 1
        assert code in GRPC_ALLOWED, (code, method)

    run()
    fuzz_server.print_counts("gRPC", COUNTS)
    assert COUNTS["OK"] > 0 and COUNTS["INVALID_ARGUMENT"] > 0
    assert COUNTS["RESOURCE_EXHAUSTED"] > 0  # the --grpc_channel_arguments limit applies
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(predict_request(label="stable"), timeout=60)
    np.testing.assert_allclose(codec.to_numpy(response.outputs["probability"]), expected(1), rtol=1e-6)
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="tiny")), timeout=60
    )
    assert sorted(v.version for v in status.model_version_status) == [1, 2] and proc.poll() is None
    fuzz_server.assert_clean_log(log_path)
