"""The PredictionService methods on one resolved servable: Predict, Classify, Regress, metadata.

Front-end agnostic: the gRPC servicer and the REST handler both call these with protos; errors are
ServingErrors carrying TF Serving's status codes and messages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import grpc
import numpy as np
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    input_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from serving import codec
from serving.errors import ServingError, invalid, precondition
from serving.servable import Servable, Signature

# runner(signature, inputs, outputs) -> outputs: Signature.run directly or through the batcher.
Runner = Callable[[Signature, dict, tuple], dict]


def direct(signature: Signature, inputs: dict, outputs: tuple) -> dict:
    return signature.run(inputs, outputs)


def model_spec(servable: Servable, signature_name: str = "") -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=servable.name, signature_name=signature_name)
    spec.version.value = servable.version
    return spec


DEFAULT_MAX_REQUEST_ELEMENTS = 1 << 22  # values decoded for one request, all inputs together
DEFAULT_MAX_DECODED_BYTES = 64 << 20  # bytes those values take once decoded


def _too_large(message: str) -> ServingError:
    """RESOURCE_EXHAUSTED on gRPC, 413 on REST (the request, not the server's load, is too large)."""
    return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, http_status=413)


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    """The most one request may make the server decode, whatever its inputs declare."""

    max_tensor_elements: int = codec.DEFAULT_MAX_ELEMENTS
    max_request_elements: int = DEFAULT_MAX_REQUEST_ELEMENTS
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES

    def check(self, elements: int, nbytes: int) -> None:
        """RESOURCE_EXHAUSTED when a request's inputs add up to more than the limits."""
        if elements > self.max_request_elements:
            raise _too_large(
                f"the request's inputs hold {elements} values, more than the limit of "
                f"{self.max_request_elements} (--max_request_elements)"
            )
        if nbytes > self.max_decoded_bytes:
            raise _too_large(
                f"the request's inputs take {nbytes} bytes decoded, more than the limit of "
                f"{self.max_decoded_bytes} (--max_decoded_request_bytes)"
            )

    def check_arrays(self, inputs: dict[str, np.ndarray]) -> None:
        """The same limits on inputs already decoded (the REST path, whose body size is capped)."""
        self.check(sum(v.size for v in inputs.values()), sum(v.nbytes for v in inputs.values()))


def check_inputs(request: predict_pb2.PredictRequest, signature: Signature, limits: RequestLimits) -> int:
    """Check names, dtypes, declared shapes and total size against ``signature``; the decoded bytes.

    Everything is checked on what the request declares before any array is allocated, so a small
    message declaring huge broadcast tensors costs nothing.
    """
    signature.check_names(request.inputs.keys())
    elements = nbytes = 0
    for alias, proto in request.inputs.items():
        dims, np_dtype, size = codec.declared(proto, limits.max_tensor_elements)
        signature.inputs[alias].check_declared(np_dtype, dims)
        elements += size
        nbytes += codec.decoded_bytes(np_dtype, size)
        if np_dtype.kind == "O":
            nbytes += sum(len(v) for v in proto.string_val)  # a broadcast value is shared, not copied
        limits.check(elements, nbytes)
    return nbytes


def decode_inputs(
    request: predict_pb2.PredictRequest, signature: Signature, limits: RequestLimits
) -> dict[str, np.ndarray]:
    """:func:`check_inputs`, then decode."""
    check_inputs(request, signature, limits)
    return decode_checked(request, limits)


def decode_checked(request: predict_pb2.PredictRequest, limits: RequestLimits) -> dict[str, np.ndarray]:
    """Decode inputs :func:`check_inputs` accepted."""
    return {a: codec.to_numpy(proto, limits.max_tensor_elements) for a, proto in request.inputs.items()}


def run_inputs(
    servable: Servable,
    signature_name: str,
    inputs: dict[str, np.ndarray],
    output_filter=(),
    runner: Runner = direct,
) -> tuple[Signature, dict[str, np.ndarray]]:
    """Validate and run decoded inputs against a signature; the REST path enters here."""
    signature = servable.signature(signature_name)
    outputs = signature.validate(inputs, output_filter)
    return signature, runner(signature, inputs, outputs)


def predict(
    servable: Servable,
    request: predict_pb2.PredictRequest,
    runner: Runner = direct,
    limits: RequestLimits = RequestLimits(),
) -> predict_pb2.PredictResponse:
    signature = servable.signature(request.model_spec.signature_name)
    inputs = decode_inputs(request, signature, limits)
    signature, out = run_inputs(
        servable, request.model_spec.signature_name, inputs, tuple(request.output_filter), runner
    )
    response = predict_pb2.PredictResponse(model_spec=model_spec(servable, signature.key))
    for alias, value in out.items():
        response.outputs[alias].CopyFrom(codec.from_numpy(value))
    return response


def serialized_examples(request_input: input_pb2.Input) -> np.ndarray:
    """The Input proto's examples, serialized (context features merged into each example)."""
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples = list(request_input.example_list.examples)
    elif kind == "example_list_with_context":
        ctx = request_input.example_list_with_context.context
        examples = []
        for ex in request_input.example_list_with_context.examples:
            merged = type(ex)()
            merged.CopyFrom(ctx)
            merged.MergeFrom(ex)
            examples.append(merged)
    else:
        raise invalid("Input is empty")
    if not examples:
        raise invalid("Input is empty")
    out = np.empty(len(examples), dtype=object)
    out[:] = [e.SerializeToString() for e in examples]
    return out


REGRESS_METHOD = "tensorflow/serving/regress"
CLASSIFY_METHOD = "tensorflow/serving/classify"


def _default_for(servable: Servable, method: str) -> str:
    """The signature a Classify/Regress request that names none runs.

    TF Serving runs ``serving_default`` and fails unless it has the method. Here, when
    ``serving_default`` is not a signature of that method and exactly one signature is, that one runs:
    our exports' ``serving_default`` takes raw features, and their ``regress`` signature is the one the
    Regress API can call.
    """
    default = servable.signatures.get("serving_default")
    if default is not None and default.method_name == method:
        return ""
    keys = [k for k, sig in servable.signatures.items() if sig.method_name == method]
    return keys[0] if len(keys) == 1 else ""


def _example_signature(
    servable: Servable, name: str, wanted: tuple[str, ...], method: str = ""
) -> Signature:
    sig = servable.signature(name or (_default_for(servable, method) if method else ""))
    if list(sig.inputs) != ["inputs"] or not any(o in sig.outputs for o in wanted):
        raise precondition(
            f"signature '{sig.key}' (method {sig.method_name}) takes inputs "
            f"{list(sig.inputs)} and returns {list(sig.outputs)}; expected one string "
            f"input 'inputs' and an output among {list(wanted)}"
        )
    return sig


def classify(
    servable: Servable, request: classification_pb2.ClassificationRequest, runner: Runner = direct
) -> classification_pb2.ClassificationResponse:
    sig = _example_signature(
        servable, request.model_spec.signature_name, ("classes", "scores"), CLASSIFY_METHOD
    )
    examples = serialized_examples(request.input)
    outputs = tuple(o for o in ("classes", "scores") if o in sig.outputs)
    out = runner(sig, {"inputs": examples}, outputs)
    n = examples.shape[0]
    scores = out.get("scores")
    classes = out.get("classes")
    response = classification_pb2.ClassificationResponse(model_spec=model_spec(servable, sig.key))
    result = response.result
    for i in range(n):
        row = result.classifications.add()
        either = scores if scores is not None else classes
        assert either is not None, "a classify signature returns scores or classes"
        width = either.reshape(n, -1).shape[1]
        for j in range(width):
            cls = row.classes.add()
            if classes is not None:
                label = classes.reshape(n, -1)[i, j]
                cls.label = label.decode() if isinstance(label, bytes) else str(label)
            if scores is not None:
                cls.score = float(scores.reshape(n, -1)[i, j])
    return response


def regress(
    servable: Servable, request: regression_pb2.RegressionRequest, runner: Runner = direct
) -> regression_pb2.RegressionResponse:
    sig = _example_signature(servable, request.model_spec.signature_name, ("outputs",), REGRESS_METHOD)
    examples = serialized_examples(request.input)
    out = runner(sig, {"inputs": examples}, ("outputs",))["outputs"]
    n = examples.shape[0]
    if out.size != n:
        raise invalid(f"regression output has {out.size} values for {n} examples; expected one each")
    response = regression_pb2.RegressionResponse(model_spec=model_spec(servable, sig.key))
    for v in out.reshape(-1):
        response.result.regressions.add(value=float(v))
    return response


def multi_inference(
    servable: Servable, request: inference_pb2.MultiInferenceRequest, runner: Runner = direct
) -> inference_pb2.MultiInferenceResponse:
    response = inference_pb2.MultiInferenceResponse()
    for task in request.tasks:
        result = response.results.add(model_spec=model_spec(servable, task.model_spec.signature_name))
        if task.method_name.endswith("classify"):
            req = classification_pb2.ClassificationRequest(model_spec=task.model_spec, input=request.input)
            result.classification_result.CopyFrom(classify(servable, req, runner).result)
        elif task.method_name.endswith("regress"):
            req = regression_pb2.RegressionRequest(model_spec=task.model_spec, input=request.input)
            result.regression_result.CopyFrom(regress(servable, req, runner).result)
        else:
            raise invalid(f"unsupported MultiInference method: {task.method_name}")
    return response


def metadata(
    servable: Servable, request: get_model_metadata_pb2.GetModelMetadataRequest
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    fields = list(request.metadata_field)
    if fields != ["signature_def"]:
        raise invalid(f"Metadata field(s) {fields} not supported; only 'signature_def' is.")
    response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=model_spec(servable))
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    for key, sig in servable.signature_defs.items():
        sig_map.signature_def[key].CopyFrom(sig)
    response.metadata["signature_def"].Pack(sig_map)
    return response
