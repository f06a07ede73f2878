"""Warm a freshly loaded version with the PredictionLogs in ``assets.extra/tf_serving_warmup_requests``.

As in TF Serving: at most 1000 records, each run ``num_request_iterations`` times (default 1); any
failure fails the load, so a version whose own warm-up requests break is never switched in.
"""

from __future__ import annotations

import os

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from serving import inference
from serving.servable import Servable

WARMUP_PATH = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000


def warmup(servable: Servable, num_request_iterations: int = 1) -> int:
    """Replay the version's warm-up requests; return how many were run (0 when there is no file)."""
    path = os.path.join(servable.path, WARMUP_PATH)
    if not tf.io.gfile.exists(path):
        return 0
    count = 0
    for record in tf.data.TFRecordDataset(path).take(MAX_RECORDS + 1):
        count += 1
        if count > MAX_RECORDS:
            raise ValueError(f"too many warm-up records in {path}: the limit is {MAX_RECORDS}")
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        kind = log.WhichOneof("log_type")
        for _ in range(num_request_iterations):
            if kind == "predict_log":
                inference.predict(servable, log.predict_log.request)
            elif kind == "classify_log":
                inference.classify(servable, log.classify_log.request)
            elif kind == "regress_log":
                inference.regress(servable, log.regress_log.request)
            elif kind == "multi_inference_log":
                inference.multi_inference(servable, log.multi_inference_log.request)
            else:
                raise ValueError(f"unsupported warm-up record type {kind!r} in {path}")
    return count
