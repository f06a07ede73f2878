"""The feature spec's transforms as a Keras layer, so training and serving run the same graph.

Raw inputs (a dict by feature name): numeric ``float32 [B]`` (NaN = missing), categorical
``string [B]``, multi-valued categorical ``RaggedTensor string [B, None]``. Outputs: the transformed
numeric matrix ``[B, n_numeric]`` and per-feature ids (``int64 [B]`` or ragged ``[B, None]``).
"""

from __future__ import annotations

import math
import os

from pipelines.feature_spec import Feature, FeatureSpec
from recsys.compat import keras, tf


def _count_lines(path: str) -> int:
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)


def vocabulary_table(feature: Feature, spec: FeatureSpec) -> tf.lookup.StaticVocabularyTable:
    """A vocab-file lookup table with OOV buckets; the file becomes a SavedModel asset on export."""
    path = spec.path(feature.vocabulary_file)
    if not feature.vocabulary_file or not os.path.exists(path):
        raise FileNotFoundError(f"vocabulary file of feature {feature.name!r} not found: {path!r}")
    lines = _count_lines(path)
    if lines != feature.vocabulary_size:
        raise ValueError(
            f"vocabulary file {path} has {lines} lines but the feature spec says "
            f"vocabulary_size={feature.vocabulary_size} for {feature.name!r}"
        )
    if feature.num_oov_buckets < 1:
        raise ValueError(f"feature {feature.name!r}: num_oov_buckets must be >= 1")
    init = tf.lookup.TextFileInitializer(
        path,
        tf.string,
        tf.lookup.TextFileIndex.WHOLE_LINE,
        tf.int64,
        tf.lookup.TextFileIndex.LINE_NUMBER,
        vocab_size=lines,
    )
    return tf.lookup.StaticVocabularyTable(init, feature.num_oov_buckets)


def transform_numeric(x: tf.Tensor, feature: Feature) -> tf.Tensor:
    """missing -> default, clip, log1p (of max(x, 0)), then (x - mean) / sqrt(variance)."""
    t, s = feature.transform, feature.stats
    x = tf.cast(x, tf.float32)
    x = tf.where(tf.math.is_nan(x), tf.constant(feature.default, tf.float32), x)
    if t.clip_min is not None or t.clip_max is not None:
        lo = -math.inf if t.clip_min is None else t.clip_min
        hi = math.inf if t.clip_max is None else t.clip_max
        x = tf.clip_by_value(x, lo, hi)
    if t.log1p:
        x = tf.math.log1p(tf.maximum(x, 0.0))
    std = math.sqrt(s.variance) if s.variance > 0 else 1.0
    return (x - s.mean) / std


class FeatureTransform(keras.layers.Layer):
    """Applies the feature spec: numeric transforms, vocabulary lookup (+OOV), hashing."""

    def __init__(self, spec: FeatureSpec, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec
        self.numeric = spec.by_kind("numeric")
        self.categorical = spec.by_kind("categorical", "multi_categorical")
        self.tables = {}
        for f in self.categorical:
            if f.encoding == "vocabulary":
                self.tables[f.name] = vocabulary_table(f, spec)
            elif f.encoding == "hash":
                if f.hash_buckets < 1:
                    raise ValueError(f"feature {f.name!r}: hash encoding needs hash_buckets >= 1")
            else:
                raise ValueError(
                    f"feature {f.name!r}: unknown encoding {f.encoding!r} (expected 'vocabulary' or 'hash')"
                )

    def ids(self, feature: Feature, values: tf.Tensor | tf.RaggedTensor):
        """Raw strings (dense or ragged) -> int64 ids in [0, feature.num_ids)."""
        if isinstance(values, tf.RaggedTensor):
            return tf.ragged.map_flat_values(lambda v: self.ids(feature, v), values)
        values = tf.strings.as_string(values) if values.dtype != tf.string else values
        if feature.encoding == "hash":
            return tf.strings.to_hash_bucket_fast(values, feature.hash_buckets)
        return self.tables[feature.name].lookup(values)

    def call(self, inputs: dict) -> tuple[tf.Tensor | None, dict]:
        numeric = None
        if self.numeric:
            cols = [transform_numeric(inputs[f.name], f) for f in self.numeric]
            numeric = tf.stack(cols, axis=1)
        ids = {f.name: self.ids(f, inputs[f.name]) for f in self.categorical}
        return numeric, ids


def missing_batch(spec: FeatureSpec) -> dict:
    """A one-row raw batch with every feature missing (builds a model without data)."""
    out: dict = {}
    for f in spec.features:
        if f.kind == "numeric":
            out[f.name] = tf.constant([math.nan], tf.float32)
        elif f.kind == "categorical":
            out[f.name] = tf.constant([""])
        else:
            out[f.name] = tf.RaggedTensor.from_row_splits(
                tf.constant([], tf.string), tf.constant([0, 0], tf.int64)
            )
    return out
