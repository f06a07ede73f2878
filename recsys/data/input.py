"""tf.data input from the feature-spec shards: file-level sharding, batch, then one parse per batch.

Parsing follows the encoding in :mod:`pipelines.feature_spec`: a missing numeric value parses to NaN
(the model maps it to the feature's default), a missing categorical to "" and a multi-valued
categorical to a ragged string row. Batch sizes are global; a distribution strategy splits them.
"""

from __future__ import annotations

import math

from pipelines.feature_spec import Feature, FeatureSpec
from recsys.compat import tf

AUTOTUNE = tf.data.AUTOTUNE


def parse_spec(spec: FeatureSpec, with_label: bool = True) -> dict:
    """The ``tf.io.parse_example`` features dict for the spec (raw values, defaults for missing)."""
    out: dict = {}
    for f in spec.features:
        out[f.name] = parse_feature(f)
    if with_label:
        out[spec.label.name] = tf.io.FixedLenFeature([], tf.float32)
    return out


def parse_feature(f: Feature):
    """How one feature is read from a tf.Example."""
    if f.kind == "numeric":
        return tf.io.FixedLenFeature([], tf.float32, default_value=math.nan)
    if f.kind == "categorical":
        return tf.io.FixedLenFeature([], tf.string, default_value="")
    return tf.io.RaggedFeature(tf.string, row_splits_dtype=tf.int64)


def parse_batch(serialized: tf.Tensor, spec: FeatureSpec) -> tuple[dict, tf.Tensor]:
    """A batch of serialized tf.Examples -> (raw features by name, labels [B])."""
    parsed = tf.io.parse_example(serialized, parse_spec(spec))
    label = parsed.pop(spec.label.name)
    return parsed, label


def shard_files(spec: FeatureSpec, split: str) -> list[str]:
    """The sorted shard paths of ``split`` ("train" or "eval"); raises if there are none."""
    pattern = {"train": spec.data.train_pattern, "eval": spec.data.eval_pattern}[split]
    files = sorted(tf.io.gfile.glob(spec.path(pattern)))
    if not files:
        raise FileNotFoundError(f"no {split} shards match {spec.path(pattern)!r}")
    return files


def count_examples(spec: FeatureSpec, split: str) -> int:
    """Number of records of a split: the spec's count when it has one, else counted (one pass)."""
    known = {"train": spec.counts.written_train, "eval": spec.counts.written_eval}[split]
    if known:
        return known
    ds = tf.data.TFRecordDataset(shard_files(spec, split), compression_type=spec.data.compression or None)
    return int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1).numpy())


def make_dataset(
    spec: FeatureSpec,
    split: str,
    batch_size: int,
    *,
    training: bool,
    shuffle_buffer: int = 0,
    seed: int = 0,
    cache: bool = False,
    num_workers: int = 1,
    min_files_per_worker: int = 1,
    max_examples: int = 0,
    num_examples: int = 0,
) -> tf.data.Dataset:
    """(features, labels) batches. Training: shuffled, repeated, full batches, sharded by file (or
    by data when there are too few files). Evaluation: one pass, sharded by data (each worker takes
    its part of every global batch, so all workers run the same number of steps). ``num_examples``
    (the split's size, when known) gives the eval dataset a cardinality, which Keras needs with
    ``steps_per_execution > 1``.
    """
    files = shard_files(spec, split)
    ds = tf.data.Dataset.from_tensor_slices(files)
    ds = ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=spec.data.compression or None),
        cycle_length=min(len(files), 4),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    if max_examples:
        ds = ds.take(max_examples)
    parse = lambda s: parse_batch(s, spec)  # noqa: E731
    if training and cache:
        ds = ds.batch(batch_size, drop_remainder=True).map(parse, num_parallel_calls=AUTOTUNE)
        ds = ds.cache()
        if shuffle_buffer:
            ds = ds.shuffle(max(1, shuffle_buffer // batch_size), seed=seed)
        ds = ds.repeat()
    elif training:
        if shuffle_buffer:
            ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        ds = ds.repeat().batch(batch_size, drop_remainder=True)
        ds = ds.map(parse, num_parallel_calls=AUTOTUNE)
    else:
        ds = ds.batch(batch_size).map(parse, num_parallel_calls=AUTOTUNE)
        if cache:
            ds = ds.cache()
        if num_examples:
            n = min(num_examples, max_examples) if max_examples else num_examples
            ds = ds.apply(tf.data.experimental.assert_cardinality(math.ceil(n / batch_size)))
    options = tf.data.Options()
    options.deterministic = True
    policy = tf.data.experimental.AutoShardPolicy
    if not training:
        options.experimental_distribute.auto_shard_policy = policy.DATA
    elif len(files) >= num_workers * max(1, min_files_per_worker):
        options.experimental_distribute.auto_shard_policy = policy.FILE
    else:
        options.experimental_distribute.auto_shard_policy = policy.DATA
    return ds.with_options(options).prefetch(AUTOTUNE)
