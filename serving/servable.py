"""One loaded SavedModel version: its signatures (read from the SignatureDefs) and a session to run them.

The version is loaded the way TF Serving loads it (a graph session over the ``serve`` MetaGraph, init
ops run by the loader), so any SavedModel works without its Python classes. Each (signature, outputs)
pair gets a session callable built once (public ``Session.make_callable``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from collections.abc import Callable

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from serving.codec import dtype_name, numpy_dtype
from serving.errors import ServingError, invalid, precondition

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
SERVE_TAG = "serve"


class _HideLoaderDeprecation(logging.Filter):
    """Drops TF's notice that the v1 loader is deprecated: TF Serving loads this way, on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "loader_impl) is deprecated" not in record.getMessage()


logging.getLogger("tensorflow").addFilter(_HideLoaderDeprecation())


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One signature input or output: graph tensor name, DataType enum, shape (None = unknown rank)."""

    alias: str
    tensor_name: str
    dtype: int
    shape: tuple[int, ...] | None

    @property
    def batched(self) -> bool:
        return self.shape is not None and len(self.shape) > 0 and self.shape[0] == -1

    @functools.cached_property
    def _expect(self) -> tuple[np.dtype, int | None, tuple[tuple[int, int], ...]]:
        """(numpy dtype, rank or None, fixed (axis, size) pairs): precomputed for the request path."""
        if self.shape is None:
            return numpy_dtype(self.dtype), None, ()
        fixed = tuple((i, s) for i, s in enumerate(self.shape) if s >= 0)
        return numpy_dtype(self.dtype), len(self.shape), fixed

    def check(self, value: np.ndarray) -> None:
        """INVALID_ARGUMENT unless ``value`` has this spec's dtype and a compatible shape."""
        self.check_declared(value.dtype, value.shape)

    def check_declared(self, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        """The same check on a dtype and shape a request declares, before anything is decoded."""
        want, rank, fixed = self._expect
        if dtype != want and not (want.kind == "O" and dtype.kind in "SO"):
            raise invalid(f"input '{self.alias}' expects {dtype_name(self.dtype)} but got {_np_name(dtype)}")
        if rank is None:
            return
        if len(shape) != rank or any(shape[i] != s for i, s in fixed):
            raise invalid(
                f"input '{self.alias}' expects shape {_shape_str(self.shape or ())} but got {list(shape)}"
            )


def _np_name(dtype: np.dtype) -> str:
    return "string" if dtype.kind in "SOU" else dtype.name


def _shape_str(shape: tuple[int, ...]) -> str:
    return "[" + ",".join("?" if d < 0 else str(d) for d in shape) + "]"


def _spec(alias: str, info: meta_graph_pb2.TensorInfo) -> TensorSpec:
    if info.WhichOneof("encoding") != "name":
        raise ValueError(f"signature tensor '{alias}' is composite or sparse; only dense tensors are served")
    shape = None if info.tensor_shape.unknown_rank else tuple(d.size for d in info.tensor_shape.dim)
    return TensorSpec(alias, info.name, info.dtype, shape)


# Run a request's graph in the thread that calls it (the request's own thread), not by handing each
# op to the session's inter-op pool: half the time of a small model's call (benchmarks/
# serving_latency.py, `in_process`). Big ops still use the intra-op pool.
CALLER_THREAD = tf.compat.v1.RunOptions(inter_op_thread_pool=-1)


class Signature:
    """A SignatureDef bound to a session: validates inputs and runs the requested outputs."""

    def __init__(self, key: str, definition: meta_graph_pb2.SignatureDef, session: tf.compat.v1.Session,
                 caller_thread: bool = True):
        self.key = key
        self._options = CALLER_THREAD if caller_thread else None
        self.definition = definition
        self.method_name = definition.method_name
        self.inputs = {a: _spec(a, i) for a, i in sorted(definition.inputs.items())}
        self.outputs = {a: _spec(a, i) for a, i in sorted(definition.outputs.items())}
        self.batchable = all(s.batched for s in self.inputs.values()) and all(
            s.batched for s in self.outputs.values()
        )
        self._sess = session
        self._input_order = list(self.inputs)
        self._callables: dict[tuple[str, ...], Callable[[list[np.ndarray]], list[np.ndarray]]] = {}
        self._lock = threading.Lock()

    def check_names(self, names) -> None:
        """INVALID_ARGUMENT unless the request's input aliases are exactly the signature's."""
        if set(names) != self.inputs.keys():
            sent = sorted(names)
            extra = sorted(set(sent) - set(self.inputs))
            missing = sorted(set(self.inputs) - set(sent))
            raise invalid(
                f"input size does not match signature: {len(sent)}!={len(self.inputs)} "
                f"len({sent}) != len({list(self.inputs)}). Sent extra: {extra}. "
                f"Missing but required: {missing}."
            )

    def validate(self, inputs: dict[str, np.ndarray], output_filter=()) -> tuple[str, ...]:
        """Check input names, dtypes and shapes; return the output aliases to fetch."""
        self.check_names(inputs.keys())
        for alias, value in inputs.items():
            self.inputs[alias].check(value)
        if self.batchable and len({v.shape[0] for v in inputs.values()}) > 1:
            raise invalid(
                "inputs have different batch sizes: "
                + ", ".join(f"{a}={v.shape[0]}" for a, v in inputs.items())
            )
        outputs = tuple(output_filter) or tuple(self.outputs)
        for alias in outputs:
            if alias not in self.outputs:
                raise invalid(
                    f"output tensor alias not found in signature: {alias} Outputs expected to "
                    f"be in the set {{{','.join(self.outputs)}}}."
                )
        if len(set(outputs)) != len(outputs):
            raise invalid(f"duplicate output tensor alias in output_filter: {list(outputs)}")
        return outputs

    def run(self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Run validated inputs; TF runtime errors keep their canonical code."""
        fn = self._callables.get(outputs)
        if fn is None:
            with self._lock:
                fn = self._callables.get(outputs) or self._make_callable(outputs)
                self._callables[outputs] = fn
        try:
            values = fn([inputs[a] for a in self._input_order])
        except tf.errors.OpError as err:
            raise ServingError(_grpc_status(err.error_code), err.message) from err
        return dict(zip(outputs, values, strict=True))

    def _make_callable(self, outputs: tuple[str, ...]) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
        """A function of the feed arrays running the session once (public ``Session.make_callable``).

        Feeds and fetches are resolved to graph tensors once here, so a request does no name lookup.
        """
        graph = self._sess.graph
        fetches = [graph.get_tensor_by_name(self.outputs[a].tensor_name) for a in outputs]
        feeds = [graph.get_tensor_by_name(self.inputs[a].tensor_name) for a in self._input_order]
        run = self._sess.make_callable(fetches, feeds, accept_options=True)
        options = self._options
        return lambda arrays: run(*arrays, options=options)


def _grpc_status(code: int) -> grpc.StatusCode:
    """TF's canonical error code number -> the gRPC status of the same number."""
    for status in grpc.StatusCode:
        if status.value[0] == code:
            return status
    return grpc.StatusCode.INTERNAL


class Servable:
    """A SavedModel version loaded into its own graph and session."""

    def __init__(self, name: str, version: int, path: str, session_config=None, caller_thread: bool = True):
        self.name = name
        self.version = version
        self.path = path
        self._graph = tf.Graph()
        self._sess = tf.compat.v1.Session(graph=self._graph, config=session_config)
        try:
            with self._graph.as_default():
                meta = tf.compat.v1.saved_model.loader.load(self._sess, [SERVE_TAG], path)
            self.signature_defs = {k: v for k, v in meta.signature_def.items() if not k.startswith("__")}
            if not self.signature_defs:
                raise ValueError(f"SavedModel at {path} has no serving signatures")
            self.signatures = {k: Signature(k, v, self._sess, caller_thread)
                               for k, v in self.signature_defs.items()}
        except BaseException:
            self._sess.close()
            raise
        self._graph.finalize()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._retired = False

    def acquire(self) -> bool:
        """Count one request using this version; False once it is retired (look it up again)."""
        with self._lock:
            if self._retired:
                return False
            self._in_flight += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1
            close = self._retired and self._in_flight == 0
        if close:
            self._sess.close()

    def retire(self) -> None:
        """Unload: close the session now, or when the requests still using it finish."""
        with self._lock:
            self._retired = True
            close = self._in_flight == 0
        if close:
            self._sess.close()

    def signature(self, key: str) -> Signature:
        sig = self.signatures.get(key or "serving_default")
        if sig is None:
            raise precondition(f'Serving signature key "{key or "serving_default"}" not found.')
        return sig
