"""gRPC servicers for ``tensorflow.serving.PredictionService`` and ``ModelService`` over ServingCore."""

from __future__ import annotations

import logging

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving.batching import deadline_in
from serving.errors import ServingError
from serving.request import ServingCore

log = logging.getLogger(__name__)


class _Undecodable:
    """A request whose bytes did not parse: answered INVALID_ARGUMENT instead of gRPC's INTERNAL."""

    def __init__(self, error: str):
        self.error = error


def _deserializer(cls):
    def parse(data: bytes):
        try:
            return cls.FromString(data)
        except Exception as err:  # noqa: BLE001 - DecodeError and friends
            return _Undecodable(f"{type(err).__name__}: {err}")

    return parse


def _call(context: grpc.ServicerContext, fn, request):
    """Run one method; a ServingError becomes its status, anything else INTERNAL (never a crash)."""
    if isinstance(request, _Undecodable):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"could not parse the request: {request.error}")
    try:
        with deadline_in(context.time_remaining()):  # the batcher drops a request its client gave up on
            return fn(request)
    except ServingError as err:
        context.abort(err.code, err.message)
    except Exception as err:  # noqa: BLE001
        log.exception("internal error")
        context.abort(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ServingCore):
        self.core = core

    def Predict(self, request, context):  # noqa: N802 - gRPC method names
        return _call(context, self.core.predict, request)

    def Classify(self, request, context):  # noqa: N802
        return _call(context, self.core.classify, request)

    def Regress(self, request, context):  # noqa: N802
        return _call(context, self.core.regress, request)

    def MultiInference(self, request, context):  # noqa: N802
        return _call(context, self.core.multi_inference, request)

    def GetModelMetadata(self, request, context):  # noqa: N802
        return _call(context, self.core.metadata, request)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ServingCore):
        self.core = core

    def GetModelStatus(self, request, context):  # noqa: N802
        return _call(context, self.core.status, request)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        return _call(context, self.core.reload_config, request)


_METHODS = {
    "tensorflow.serving.PredictionService": {
        "Predict": (predict_pb2.PredictRequest, predict_pb2.PredictResponse),
        "Classify": (classification_pb2.ClassificationRequest, classification_pb2.ClassificationResponse),
        "Regress": (regression_pb2.RegressionRequest, regression_pb2.RegressionResponse),
        "MultiInference": (inference_pb2.MultiInferenceRequest, inference_pb2.MultiInferenceResponse),
        "GetModelMetadata": (
            get_model_metadata_pb2.GetModelMetadataRequest,
            get_model_metadata_pb2.GetModelMetadataResponse,
        ),
    },
    "tensorflow.serving.ModelService": {
        "GetModelStatus": (
            get_model_status_pb2.GetModelStatusRequest,
            get_model_status_pb2.GetModelStatusResponse,
        ),
        "HandleReloadConfigRequest": (
            model_management_pb2.ReloadConfigRequest,
            model_management_pb2.ReloadConfigResponse,
        ),
    },
}


def add_services(server: grpc.Server, core: ServingCore) -> None:
    """Register both services (the generated servicer classes, our request deserializers)."""
    servicers = {
        "tensorflow.serving.PredictionService": PredictionServicer(core),
        "tensorflow.serving.ModelService": ModelServicer(core),
    }
    for service, methods in _METHODS.items():
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                getattr(servicers[service], name),
                request_deserializer=_deserializer(req),
                response_serializer=resp.SerializeToString,
            )
            for name, (req, resp) in methods.items()
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
