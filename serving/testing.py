"""Tiny SavedModels in TF Serving's layout, for tests, the benchmark and smoke checks.

The model: a string lookup (``cat``) plus a linear term in two floats (``x1``, ``x2``) through a
sigmoid, with ``bias`` shifting the logit so versions give different predictions. Signatures:
``serving_default`` (raw features -> ``probability`` [None]), ``predict_examples`` (serialized
tf.Example ``inputs`` -> ``scores``), ``regress`` (regress method: ``inputs`` -> ``outputs``) and
``classify`` (classify method: ``inputs`` -> ``classes``, ``scores`` [None, 2]).
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import tensorflow as tf

VOCAB = {"a": 0.5, "b": -0.5, "c": 1.0}
WEIGHTS = (0.3, -0.2)


def reference(cat, x1, x2, bias: float = 0.0) -> np.ndarray:
    """The model's output computed in numpy (float32 like the graph)."""
    lookup = np.array([VOCAB.get(c.decode() if isinstance(c, bytes) else c, 0.0) for c in cat], np.float32)
    z = (
        lookup
        + np.float32(WEIGHTS[0]) * np.asarray(x1, np.float32)
        + np.float32(WEIGHTS[1]) * np.asarray(x2, np.float32)
        + np.float32(bias)
    )
    return (1.0 / (1.0 + np.exp(-z.astype(np.float64)))).astype(np.float32)


class _Tiny(tf.Module):
    def __init__(self, bias: float):
        super().__init__()
        keys, values = zip(*VOCAB.items(), strict=True)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.constant(values, tf.float32)), 0.0
        )
        self.w = tf.Variable(WEIGHTS, dtype=tf.float32)
        self.bias = tf.Variable(bias, dtype=tf.float32)

    def _prob(self, cat, x1, x2):
        return tf.sigmoid(self.table.lookup(cat) + self.w[0] * x1 + self.w[1] * x2 + self.bias)

    def _parse(self, serialized):
        f = tf.io.parse_example(
            serialized,
            {
                "cat": tf.io.FixedLenFeature([], tf.string, default_value=""),
                "x1": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
                "x2": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
            },
        )
        return self._prob(f["cat"], f["x1"], f["x2"])


def _set_method_names(export_dir: str, methods: dict[str, str]) -> None:
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(export_dir, "saved_model.pb")
    with open(path, "rb") as fh:
        sm = saved_model_pb2.SavedModel.FromString(fh.read())
    for meta in sm.meta_graphs:
        for key, method in methods.items():
            if key in meta.signature_def:
                meta.signature_def[key].method_name = method
    with open(path, "wb") as fh:
        fh.write(sm.SerializeToString())


def warmup_records(model_name: str, n: int = 3) -> list[bytes]:
    """PredictionLog records (serving_default) like the exporter writes."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    from serving import codec

    out = []
    for i in range(n):
        req = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name))
        req.inputs["cat"].CopyFrom(codec.from_numpy(np.array([b"a", b"b", b"c"][: i + 1], dtype=object)))
        req.inputs["x1"].CopyFrom(codec.from_numpy(np.arange(i + 1, dtype=np.float32)))
        req.inputs["x2"].CopyFrom(codec.from_numpy(np.ones(i + 1, dtype=np.float32)))
        log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=req))
        out.append(log.SerializeToString())
    return out


def write_warmup(version_dir: str, records: list[bytes]) -> None:
    extra = os.path.join(version_dir, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(extra, "tf_serving_warmup_requests")) as w:
        for r in records:
            w.write(r)


def export_tiny(
    base_path: str, version: int, bias: float = 0.0, model_name: str = "tiny", warmup: bool = True
) -> str:
    """Write ``<base_path>/<version>`` atomically (temp dir + rename) and return its path."""
    module = _Tiny(bias)
    raw = [
        tf.TensorSpec([None], tf.string, name="cat"),
        tf.TensorSpec([None], tf.float32, name="x1"),
        tf.TensorSpec([None], tf.float32, name="x2"),
    ]
    ex = [tf.TensorSpec([None], tf.string, name="inputs")]
    serving_default = tf.function(
        lambda cat, x1, x2: {"probability": module._prob(cat, x1, x2)}, input_signature=raw
    )
    predict_examples = tf.function(lambda inputs: {"scores": module._parse(inputs)}, input_signature=ex)
    regress = tf.function(lambda inputs: {"outputs": module._parse(inputs)}, input_signature=ex)

    def _classify(inputs):
        p = module._parse(inputs)
        n = tf.shape(p)[0]
        return {
            "scores": tf.stack([1.0 - p, p], axis=1),
            "classes": tf.tile(tf.constant([["no_click", "click"]]), [n, 1]),
        }

    classify = tf.function(_classify, input_signature=ex)
    os.makedirs(base_path, exist_ok=True)
    tmp = os.path.join(base_path, f".tmp-{version}")
    shutil.rmtree(tmp, ignore_errors=True)
    tf.saved_model.save(
        module,
        tmp,
        signatures={
            "serving_default": serving_default.get_concrete_function(),
            "predict_examples": predict_examples.get_concrete_function(),
            "regress": regress.get_concrete_function(),
            "classify": classify.get_concrete_function(),
        },
    )
    _set_method_names(
        tmp, {"regress": "tensorflow/serving/regress", "classify": "tensorflow/serving/classify"}
    )
    if warmup:
        write_warmup(tmp, warmup_records(model_name))
    final = os.path.join(base_path, str(version))
    os.rename(tmp, final)
    return final


def copy_version(src: str, base_path: str, version: int) -> str:
    """Copy an exported version directory in as ``<base_path>/<version>`` (temp copy + rename)."""
    os.makedirs(base_path, exist_ok=True)
    tmp = os.path.join(base_path, f".tmp-copy-{version}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    final = os.path.join(base_path, str(version))
    os.rename(tmp, final)
    return final
