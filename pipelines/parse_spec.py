"""The one ``tf.io.parse_example`` features dict of a feature spec's tf.Example rows.

Parsing follows the encoding in :mod:`pipelines.feature_spec`: a missing numeric value parses to NaN
(the model maps it to the feature's default), a missing categorical to "" and a multi-valued
categorical to a ragged string row. The training input, the serving signature and the columnar
writer all parse with it, so every reader sees the same values. TensorFlow is imported inside the
functions: the pipelines package stays importable without it.
"""

from __future__ import annotations

import math
from typing import Any

from pipelines.feature_spec import Feature, FeatureSpec


def parse_feature(f: Feature) -> Any:
    """How one feature is read from a tf.Example."""
    import tensorflow as tf

    if f.kind == "numeric":
        return tf.io.FixedLenFeature([], tf.float32, default_value=math.nan)
    if f.kind == "categorical":
        return tf.io.FixedLenFeature([], tf.string, default_value="")
    return tf.io.RaggedFeature(tf.string, row_splits_dtype=tf.int64)


def parse_spec(spec: FeatureSpec, with_label: bool = True) -> dict[str, Any]:
    """The features dict for the spec (raw values, defaults for missing), the label last."""
    import tensorflow as tf

    out: dict[str, Any] = {f.name: parse_feature(f) for f in spec.features}
    if with_label:
        out[spec.label.name] = tf.io.FixedLenFeature([], tf.float32)
    return out
