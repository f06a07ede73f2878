"""Serving signatures with explicit input signatures derived from the feature spec.

- ``serving_default``: raw values by feature name (numeric float32, NaN = missing; categorical
  string, "" = missing; multi-valued categorical one separator-joined string) -> ``probability``.
- ``predict_examples``: serialized tf.Example under ``inputs`` -> ``scores``.
- ``regress``: the same under TF Serving's Regress names (``inputs`` -> ``outputs``).

The three share one traced function of the model's inputs (``probability``), which each signature
calls after its own parsing: the model's graph is traced and stored once, not once per signature.
"""

from __future__ import annotations

from collections.abc import Callable

from pipelines.feature_spec import Feature, FeatureSpec
from pipelines.parse_spec import parse_spec
from recsys.compat import tf

DEFAULT_SEPARATOR = ","


def separator(feature: Feature) -> str:
    """The join separator of a multi-valued categorical in serving requests."""
    return feature.separator or DEFAULT_SEPARATOR


def raw_input_signature(spec: FeatureSpec) -> dict[str, tf.TensorSpec]:
    """One rank-1 tensor per feature, batch dimension None (never the traced shape)."""
    return {
        f.name: tf.TensorSpec([None], tf.float32 if f.kind == "numeric" else tf.string, name=f.name)
        for f in spec.features
    }


def raw_to_model_inputs(raw: dict, spec: FeatureSpec) -> dict:
    """Serving request tensors -> the model's input dict (joined strings become ragged rows)."""
    out = {}
    for f in spec.features:
        x = raw[f.name]
        if f.kind == "multi_categorical":
            parts = tf.strings.split(x, sep=separator(f))
            x = tf.ragged.boolean_mask(parts, tf.strings.length(parts) > 0)
            x = x.with_row_splits_dtype(tf.int64)
        out[f.name] = x
    return out


def model_input_signature(spec: FeatureSpec) -> dict[str, tf.TypeSpec]:
    """The model's inputs as both signatures' parsing gives them: rank 1 per feature, a multi-valued
    categorical a ragged string row (int64 row splits, as :func:`pipelines.parse_spec.parse_feature`)."""
    out: dict[str, tf.TypeSpec] = {}
    for f in spec.features:
        if f.kind == "multi_categorical":
            out[f.name] = tf.RaggedTensorSpec([None, None], tf.string, ragged_rank=1,
                                              row_splits_dtype=tf.int64)
        else:
            out[f.name] = tf.TensorSpec([None], tf.float32 if f.kind == "numeric" else tf.string)
    return out


def make_signatures(model: Callable, spec: FeatureSpec) -> dict[str, tf.types.experimental.ConcreteFunction]:
    """Concrete functions for the SavedModel (trace them inside ``portable_kernels()``)."""

    @tf.function(input_signature=[model_input_signature(spec)], autograph=False)
    def probability(features: dict) -> tf.Tensor:
        return tf.reshape(model(features, training=False), [-1])

    @tf.function(input_signature=[raw_input_signature(spec)], autograph=False)
    def serving_default(raw):
        return {"probability": probability(raw_to_model_inputs(raw, spec))}

    examples_sig = [tf.TensorSpec([None], tf.string, name="inputs")]

    def parse(serialized):
        return tf.io.parse_example(serialized, parse_spec(spec, with_label=False))

    @tf.function(input_signature=examples_sig, autograph=False)
    def predict_examples(inputs):
        return {"scores": probability(parse(inputs))}

    @tf.function(input_signature=examples_sig, autograph=False)
    def regress(inputs):
        return {"outputs": probability(parse(inputs))}

    return {
        "serving_default": serving_default.get_concrete_function(),
        "predict_examples": predict_examples.get_concrete_function(),
        "regress": regress.get_concrete_function(),
    }
