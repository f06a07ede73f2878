"""Request logging: a sampled share of Predict requests written as PredictionLog TFRecords.

The same record format as TF Serving's request logs and warm-up files, so ``recsys monitor
--request_log`` can replay captured live traffic against replicas. Writing happens on a background
thread; a full queue drops the sample (counted) rather than slowing the request.
"""

from __future__ import annotations

import logging
import queue
import random
import threading

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from pipelines.example_codec import tfrecord_frames
from serving import codec

log = logging.getLogger(__name__)


class RequestLogger:
    """Appends sampled requests to ``path`` until ``max_records`` (0: no limit).

    Appends: a restarted server adds to the records earlier runs wrote (TFRecord framing written
    here, since ``tf.io.TFRecordWriter`` can only truncate). ``max_records`` counts this run's records.
    """

    def __init__(
        self,
        path: str,
        sample_rate: float = 0.01,
        max_records: int = 0,
        max_queue: int = 1000,
        seed: int | None = None,
    ):

        self.path = path
        self.sample_rate = sample_rate
        self.max_records = max_records
        self.written = 0
        self.dropped = 0
        self._random = random.Random(seed)
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._writer = tf.io.gfile.GFile(path, "ab")
        self._thread = threading.Thread(target=self._loop, name="request-log", daemon=True)
        self._thread.start()

    def offer(self, spec: model_pb2.ModelSpec, signature_key: str, inputs: dict[str, np.ndarray]) -> None:
        if self._random.random() >= self.sample_rate:
            return
        if self.max_records and self.written + self._queue.qsize() >= self.max_records:
            return
        try:
            self._queue.put_nowait((spec.SerializeToString(), signature_key, inputs))
        except queue.Full:
            self.dropped += 1

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                spec_bytes, key, inputs = item
                request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec.FromString(spec_bytes))
                request.model_spec.signature_name = key
                for alias, value in inputs.items():
                    request.inputs[alias].CopyFrom(codec.from_numpy(value))
                record = prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(request=request)
                )
                self._writer.write(tfrecord_frames([record.SerializeToString()]))
                self.written += 1
                if self.written % 100 == 0:
                    self._writer.flush()
            except Exception:  # noqa: BLE001 - logging must never affect serving
                log.exception("could not write a request log record")
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait for queued records and flush them to the file."""
        self._queue.join()
        self._writer.flush()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._writer.close()
