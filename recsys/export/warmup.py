"""TF Serving warm-up: a few real PredictRequests in ``assets.extra/tf_serving_warmup_requests``."""

from __future__ import annotations

import os

import numpy as np

from pipelines.feature_spec import FeatureSpec
from recsys.compat import tf
from recsys.export.signatures import separator

WARMUP_FILENAME = "tf_serving_warmup_requests"


def raw_batch(features: dict, labels_spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Parsed features (ragged multi-valued) -> the raw serving inputs as numpy arrays."""
    out = {}
    for f in labels_spec.features:
        x = features[f.name]
        if f.kind == "multi_categorical":
            x = tf.strings.reduce_join(x, axis=1, separator=separator(f))
        out[f.name] = x.numpy()
    return out


def write_warmup(directory: str, model_name: str, requests: list[dict[str, np.ndarray]]) -> str:
    """Write PredictionLogs (signature ``serving_default``) to ``<directory>/assets.extra``."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    extra = os.path.join(directory, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    path = os.path.join(extra, WARMUP_FILENAME)
    with tf.io.TFRecordWriter(path) as writer:
        for raw in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name="serving_default")
            )
            for name, value in raw.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path
