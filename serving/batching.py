"""Server-side batching: concurrent requests to one signature are merged into one session call.

Follows TF Serving's batching parameters (text proto): ``max_batch_size``, ``batch_timeout_micros``,
``num_batch_threads``, ``max_enqueued_batches``. A batch runs when it is full, when its timeout has
passed, or -- with timeout 0 -- as soon as a batch thread is free, so batches grow with the load.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import threading
import time
from collections.abc import Iterator

import grpc
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

from serving.errors import ServingError, invalid
from serving.servable import Signature

# TF Serving's BatchingParameters (session_bundle_config.proto), which tensorflow-serving-api does not
# ship: (field, number, wrapper type or scalar). Text protos are parsed by protobuf against it.
_FIELDS = [
    ("max_batch_size", 1, "Int64Value"),
    ("batch_timeout_micros", 2, "Int64Value"),
    ("max_enqueued_batches", 3, "Int64Value"),
    ("num_batch_threads", 4, "Int64Value"),
    ("thread_pool_name", 5, "StringValue"),
    ("allowed_batch_sizes", 6, "repeated int64"),
    ("pad_variable_length_inputs", 7, "bool"),
    ("enable_large_batch_splitting", 8, "BoolValue"),
    ("max_execution_batch_size", 9, "Int64Value"),
]


@functools.cache
def batching_parameters_proto() -> type:
    """The ``tensorflow.serving.BatchingParameters`` message class, built in a private pool."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/batching_parameters.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = fdp.message_type.add(name="BatchingParameters")
    field = descriptor_pb2.FieldDescriptorProto
    for name, number, kind in _FIELDS:
        if kind == "repeated int64":
            message.field.add(name=name, number=number, label=field.LABEL_REPEATED, type=field.TYPE_INT64)
        elif kind == "bool":
            message.field.add(name=name, number=number, label=field.LABEL_OPTIONAL, type=field.TYPE_BOOL)
        else:
            message.field.add(
                name=name,
                number=number,
                label=field.LABEL_OPTIONAL,
                type=field.TYPE_MESSAGE,
                type_name=f".google.protobuf.{kind}",
            )
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(fdp)
    descriptor = pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    return message_factory.GetMessageClass(descriptor)


@dataclasses.dataclass
class BatchingParameters:
    """TF Serving's BatchingParameters fields that this batcher uses."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    num_batch_threads: int = 4
    max_enqueued_batches: int = 100

    @classmethod
    def parse(cls, text: str) -> BatchingParameters:
        """Parse the text proto (``max_batch_size { value: 128 }``) with protobuf's ``text_format``.

        Every field of TF Serving's message is accepted (those the batcher does not use are ignored);
        an unknown field or a syntax error is a ValueError, as TF Serving refuses such a file.
        """
        try:
            proto = text_format.Parse(text, batching_parameters_proto()())
        except text_format.ParseError as err:
            raise ValueError(f"invalid batching parameters file: {err}") from err
        params = cls()
        for f in dataclasses.fields(cls):
            if proto.HasField(f.name):
                setattr(params, f.name, getattr(proto, f.name).value)
        if params.max_batch_size < 1 or params.num_batch_threads < 1 or params.max_enqueued_batches < 1:
            raise ValueError(f"invalid batching parameters: {params}")
        return params


# The monotonic time by which the current request must be answered (the gRPC client's deadline);
# set by the front end around each call, read by the batcher on the request's own thread.
REQUEST_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


@contextlib.contextmanager
def deadline_in(seconds: float | None) -> Iterator[None]:
    """Run the block with a request deadline ``seconds`` from now (None: no deadline)."""
    token = REQUEST_DEADLINE.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        REQUEST_DEADLINE.reset(token)


def _expired(what: str) -> ServingError:
    return ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, f"deadline exceeded {what}")


class _Task:
    __slots__ = ("inputs", "rows", "result", "error", "done", "started", "cancelled")

    def __init__(self, inputs: dict[str, np.ndarray], rows: int):
        self.inputs = inputs
        self.rows = rows
        self.result: dict[str, np.ndarray] | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.started = False  # picked by a batch thread (under the batcher's lock)
        self.cancelled = False  # its deadline passed while queued: never run


class _Batch:
    __slots__ = ("signature", "outputs", "tasks", "rows", "deadline", "closed")

    def __init__(self, signature: Signature, outputs: tuple[str, ...], deadline: float):
        self.signature = signature
        self.outputs = outputs
        self.tasks: list[_Task] = []
        self.rows = 0
        self.deadline = deadline
        self.closed = False


class Batcher:
    """Merges tasks per (signature, outputs) and runs batches on ``num_batch_threads`` threads."""

    def __init__(self, params: BatchingParameters):
        self.params = params
        self._cv = threading.Condition()
        self._open: dict[tuple[int, tuple[str, ...]], _Batch] = {}
        self._ready: list[_Batch] = []  # closed batches, oldest first
        self._stopped = False
        self._running = 0  # model calls in progress (batch threads and inline runs)
        self.batches_run = 0
        self.tasks_run = 0
        self.tasks_expired = 0  # requests dropped from the queue because their deadline passed
        self._threads = [
            threading.Thread(target=self._loop, name=f"batch-{i}", daemon=True)
            for i in range(params.num_batch_threads)
        ]
        for t in self._threads:
            t.start()

    def run(
        self, signature: Signature, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        """Run validated inputs, merged with other requests when the signature is batchable.

        A request whose deadline (:data:`REQUEST_DEADLINE`) passes while it is queued is taken out of
        its batch and answered DEADLINE_EXCEEDED; a full queue is UNAVAILABLE (HTTP 503).
        """
        deadline = REQUEST_DEADLINE.get()
        if deadline is not None and deadline <= time.monotonic():
            raise _expired("before the request was queued")
        rows = next(iter(inputs.values())).shape[0] if inputs else 0
        if not signature.batchable or rows == 0 or rows > self.params.max_batch_size:
            return signature.run(inputs, outputs)
        task = _Task(inputs, rows)
        key = (id(signature), outputs)
        with self._cv:
            if self._stopped:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "server is shutting down")
            inline = (
                self.params.batch_timeout_micros == 0
                and self._running < len(self._threads)
                and not self._open
                and not self._ready
            )
            if inline:  # idle batcher: run this request on its own thread, no hand-off
                self._running += 1
        if inline:
            try:
                return signature.run(inputs, outputs)
            finally:
                with self._cv:
                    self._running -= 1
                    self.batches_run += 1
                    self.tasks_run += 1
                    self._cv.notify()
        with self._cv:
            batch = self._open.get(key)
            if batch is not None and batch.rows + rows > self.params.max_batch_size:
                self._close(key, batch)
                batch = None
            if batch is None:
                if len(self._ready) >= self.params.max_enqueued_batches * max(1, len(self._threads)):
                    raise ServingError(grpc.StatusCode.UNAVAILABLE, "the batch queue is full; retry later")
                batch = _Batch(signature, outputs, time.monotonic() + self.params.batch_timeout_micros / 1e6)
                self._open[key] = batch
            batch.tasks.append(task)
            batch.rows += rows
            if batch.rows >= self.params.max_batch_size:
                self._close(key, batch)
            self._cv.notify()
        timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        if not task.done.wait(timeout):
            with self._cv:
                if not task.started:
                    task.cancelled = True
                    self.tasks_expired += 1
            raise _expired("while the request was queued for batching")
        if task.error is not None:
            raise task.error
        if task.result is None:  # _execute sets a result or an error before it sets done
            raise ServingError(grpc.StatusCode.INTERNAL, "a batch finished without a result")
        return task.result

    def _close(self, key, batch: _Batch) -> None:
        batch.closed = True
        del self._open[key]
        self._ready.append(batch)

    def _next(self) -> _Batch | None:
        """The next batch to run (caller holds the lock), or None after stop()."""
        while True:
            if self._stopped and not self._ready:
                return None
            if self._running >= len(self._threads):  # every slot busy (inline runs count)
                self._cv.wait()
                continue
            if self._ready:
                self._running += 1
                return self._ready.pop(0)
            now = time.monotonic()
            due = [(k, b) for k, b in self._open.items() if b.deadline <= now]
            if due:
                key, batch = min(due, key=lambda kb: kb[1].deadline)
                self._close(key, batch)
                continue
            if self._stopped:
                return None
            timeout = min((b.deadline for b in self._open.values()), default=now + 1.0) - now
            self._cv.wait(timeout=max(timeout, 0.0))

    def _loop(self) -> None:
        while True:
            with self._cv:
                batch = self._next()
            if batch is None:
                return
            try:
                self._execute(batch)
            finally:
                with self._cv:
                    self._running -= 1
                    self._cv.notify_all()

    def _execute(self, batch: _Batch) -> None:
        with self._cv:
            tasks = [t for t in batch.tasks if not t.cancelled]
            for t in tasks:
                t.started = True
        if not tasks:
            return
        rows = sum(t.rows for t in tasks)
        try:
            if len(tasks) == 1:
                results = [batch.signature.run(tasks[0].inputs, batch.outputs)]
            else:
                merged = {a: np.concatenate([t.inputs[a] for t in tasks]) for a in tasks[0].inputs}
                out = batch.signature.run(merged, batch.outputs)
                for alias, value in out.items():
                    if value.ndim == 0 or value.shape[0] != rows:
                        raise invalid(
                            f"output '{alias}' has no batch dimension of size {rows}; "
                            "this signature cannot be batched"
                        )
                offsets = np.cumsum([0] + [t.rows for t in tasks])
                results = [
                    {a: v[offsets[i] : offsets[i + 1]] for a, v in out.items()} for i in range(len(tasks))
                ]
            for task, result in zip(tasks, results, strict=True):
                task.result = result
        except BaseException as err:  # noqa: BLE001 - every waiting request gets the error
            for task in tasks:
                task.error = err
        finally:
            with self._cv:
                self.batches_run += 1
                self.tasks_run += len(tasks)
            for task in tasks:
                task.done.set()

    def stop(self) -> None:
        """Stop the batch threads; requests still queued get UNAVAILABLE instead of waiting forever."""
        with self._cv:
            self._stopped = True
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout=5)
        with self._cv:
            left = self._ready + list(self._open.values())
            self._ready, self._open = [], {}
        for batch in left:
            for task in batch.tasks:
                task.error = ServingError(grpc.StatusCode.UNAVAILABLE, "server is shutting down")
                task.done.set()
