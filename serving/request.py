"""The server's request path, shared by gRPC and REST: resolve the servable, run, count, mirror.

Every method takes and returns TF Serving protos (REST converts JSON to arrays and calls
:meth:`ServingCore.predict_arrays`). The servable is held (acquired) for the whole request, so a
version swap never closes a session under a running request.
"""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
from prometheus_client import CollectorRegistry
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    predict_pb2,
    status_pb2,
)

from serving import codec, inference
from serving.admission import InFlightBytes
from serving.batching import Batcher
from serving.errors import ServingError
from serving.manager import ModelManager
from serving.metrics import RequestMetrics
from serving.reload_policy import ReloadPolicy
from serving.servable import Servable, Signature


class ServingCore:
    """Model manager + optional batcher + optional shadow mirror, behind TF Serving's methods."""

    def __init__(
        self,
        manager: ModelManager,
        batcher: Batcher | None = None,
        limits: inference.RequestLimits | None = None,
        registry: CollectorRegistry | None = None,
        shadow=None,
        request_log=None,
        reload_policy: ReloadPolicy | None = None,
        in_flight: InFlightBytes | None = None,
    ):
        self.manager = manager
        self.batcher = batcher
        self.limits = limits if limits is not None else inference.RequestLimits()
        self.shadow = shadow  # serving.shadow.Shadow: offered each Predict after the response is built
        self.in_flight = in_flight if in_flight is not None else InFlightBytes()
        self.reload_policy = reload_policy if reload_policy is not None else ReloadPolicy()
        self.request_log = request_log  # serving.requestlog.RequestLogger: samples Predict requests
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        self.metrics = RequestMetrics(self.registry)
        self.runner = batcher.run if batcher is not None else inference.direct
        self._served = threading.local()  # (version, signature) of the request on this thread

    def _timed(self, method: str, fn, *args, spec: model_pb2.ModelSpec | None = None, entrypoint="GRPC"):
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        self._served.value = (None, "")
        try:
            return fn(*args)
        except ServingError as err:
            code = err.code
            raise
        except Exception:
            code = grpc.StatusCode.INTERNAL
            raise
        finally:
            version, signature = self._served.value
            self.metrics.record(
                method, code, time.perf_counter() - start, entrypoint,
                spec.name if spec is not None else "", signature, version,
            )

    def _with_servable(self, spec: model_pb2.ModelSpec, fn):
        servable = self.manager.get(spec)
        self._served.value = (servable.version, spec.signature_name or "serving_default")
        try:
            response = fn(servable)
        finally:
            servable.release()
        used = getattr(getattr(response, "model_spec", None), "signature_name", "")
        if used:  # the signature that ran (Classify/Regress may default to another than serving_default)
            self._served.value = (servable.version, used)
        return response

    # ---- PredictionService -----------------------------------------------------------------------
    def predict(self, request: predict_pb2.PredictRequest, entrypoint="GRPC") -> predict_pb2.PredictResponse:
        return self._timed("predict", self._predict, request, spec=request.model_spec, entrypoint=entrypoint)

    def _predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        # the model and signature first: an unknown model or a wrong input costs no decoding
        servable, signature, out = self._serve(
            request.model_spec,
            lambda sig: (
                inference.check_inputs(request, sig, self.limits),
                lambda: inference.decode_checked(request, self.limits),
            ),
            tuple(request.output_filter),
        )
        response = predict_pb2.PredictResponse(model_spec=inference.model_spec(servable, signature.key))
        for alias, value in out.items():
            response.outputs[alias].CopyFrom(codec.from_numpy(value))
        return response

    def predict_arrays(
        self, spec: model_pb2.ModelSpec, inputs: dict[str, np.ndarray], output_filter=(), entrypoint="REST"
    ) -> tuple[Servable, Signature, dict[str, np.ndarray]]:
        """Predict on decoded arrays (the REST path); returns the servable and signature used."""
        self.limits.check_arrays(inputs)
        nbytes = sum(v.nbytes for v in inputs.values())
        return self._timed(
            "predict", self._serve, spec, lambda sig: (nbytes, lambda: inputs), tuple(output_filter),
            spec=spec, entrypoint=entrypoint,
        )

    def _serve(self, spec: model_pb2.ModelSpec, prepare, output_filter: tuple):
        """Resolve and hold the servable; ``prepare(signature)`` checks the inputs and returns (decoded
        bytes, decode); admit those bytes, decode, validate, run, offer."""
        servable = self.manager.get(spec)
        self._served.value = (servable.version, spec.signature_name or "serving_default")
        try:
            signature = servable.signature(spec.signature_name)
            nbytes, decode = prepare(signature)
            with self.in_flight.hold(nbytes):
                inputs = decode()
                outputs = signature.validate(inputs, output_filter)
                out = self.runner(signature, inputs, outputs)
        finally:
            servable.release()
        if self.shadow is not None:
            self.shadow.offer(spec, signature, inputs, out)
        if self.request_log is not None:
            self.request_log.offer(spec, signature.key, inputs)
        return servable, signature, out

    def signature_of(self, spec: model_pb2.ModelSpec) -> Signature:
        """The signature a spec resolves to (REST needs the input dtypes before decoding JSON)."""
        return self._with_servable(spec, lambda s: s.signature(spec.signature_name))

    def classify(self, request, entrypoint: str = "GRPC"):
        return self._timed(
            "classify",
            self._with_servable,
            request.model_spec,
            lambda s: inference.classify(s, request, self.runner),
            spec=request.model_spec,
            entrypoint=entrypoint,
        )

    def regress(self, request, entrypoint: str = "GRPC"):
        return self._timed(
            "regress",
            self._with_servable,
            request.model_spec,
            lambda s: inference.regress(s, request, self.runner),
            spec=request.model_spec,
            entrypoint=entrypoint,
        )

    def multi_inference(self, request):
        if not request.tasks:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "Inference request must have tasks")
        spec = request.tasks[0].model_spec
        return self._timed(
            "multi_inference",
            self._with_servable,
            spec,
            lambda s: inference.multi_inference(s, request, self.runner),
            spec=spec,
        )

    def metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest):
        return self._timed(
            "metadata", self._with_servable, request.model_spec, lambda s: inference.metadata(s, request)
        )

    # ---- ModelService ----------------------------------------------------------------------------
    def status(self, request: get_model_status_pb2.GetModelStatusRequest):
        def run():
            response = get_model_status_pb2.GetModelStatusResponse()
            for version, st in self.manager.status(request.model_spec):
                item = response.model_version_status.add(version=version, state=st.state)
                item.status.error_code = st.code.value[0]
                item.status.error_message = st.message
            return response

        return self._timed("status", run)

    def reload_config(self, request: model_management_pb2.ReloadConfigRequest):
        from serving.errors import invalid

        def run():
            if request.config.WhichOneof("config") != "model_config_list":
                if not self.reload_policy.allowed:
                    self.reload_policy.check([])  # PERMISSION_DENIED first: nothing told to a stranger
                raise invalid("ReloadConfigRequest needs a model_config_list")
            configs = list(request.config.model_config_list.config)
            self.reload_policy.check(configs)
            self.manager.reload(configs)
            return model_management_pb2.ReloadConfigResponse(status=status_pb2.StatusProto(error_code=0))

        return self._timed("reload_config", run)
