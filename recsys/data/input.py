"""tf.data input from the feature-spec shards for one pass over a split (evaluation, warmup rows).

Rows are parsed a batch at a time with :func:`pipelines.parse_spec.parse_spec`. Training does not
read through here: its order is :mod:`recsys.data.stream`'s. Batch sizes are global; a distribution
strategy splits them.
"""

from __future__ import annotations

from pipelines.feature_spec import FeatureSpec
from pipelines.parse_spec import parse_spec
from recsys.compat import tf

AUTOTUNE = tf.data.AUTOTUNE
# tf.data functions traced as written: none has control flow on tensors, and AutoGraph's source
# conversion of each one cost more CPU at start-up than the job's first steps (recsys/train/loop.py).
plain = tf.autograph.experimental.do_not_convert


def parse_batch(serialized: tf.Tensor, spec: FeatureSpec) -> tuple[dict, tf.Tensor]:
    """A batch of serialized tf.Examples -> (raw features by name, labels [B])."""
    parsed = tf.io.parse_example(serialized, parse_spec(spec))
    label = parsed.pop(spec.label.name)
    return parsed, label


def shard_files(spec: FeatureSpec, split: str, windows: tuple[int, ...] = ()) -> list[str]:
    """The sorted shard paths of ``split`` ("train" or "eval"); raises if there are none.

    ``windows`` selects the train split's time windows (``data.windows``; () = all of them): their shards,
    window after window. A window the spec does not have is a ValueError naming those it has.
    """
    patterns = spec.train_patterns(windows) if split == "train" else [spec.data.eval_pattern]
    return glob_shards(spec, patterns, split)


def glob_shards(spec: FeatureSpec, patterns: list[str], what: str) -> list[str]:
    """The files matching each pattern (relative to the spec), sorted within a pattern; each must match."""
    files: list[str] = []
    for pattern in patterns:
        found = sorted(tf.io.gfile.glob(spec.path(pattern)))
        if not found:
            raise FileNotFoundError(f"no {what} shards match {spec.path(pattern)!r}")
        files += found
    return files


def count_examples(spec: FeatureSpec, split: str) -> int:
    """Number of records of a split: the spec's count when it has one, else counted (one pass)."""
    known = {"train": spec.counts.written_train, "eval": spec.counts.written_eval}[split]
    if known:
        return known
    ds = tf.data.TFRecordDataset(shard_files(spec, split), compression_type=spec.data.compression or None)
    return int(ds.reduce(tf.constant(0, tf.int64), plain(lambda n, _: n + 1)).numpy())


def make_dataset(spec: FeatureSpec, split: str, batch_size: int, *, cache: bool = False,
                 max_examples: int = 0) -> tf.data.Dataset:
    """One pass over ``split``: (features, labels) batches, the last one possibly short, the shards
    interleaved four at a time. Sharded by data under a distribution strategy (each worker takes its
    part of every global batch, so all workers run the same number of steps)."""
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
    ds = ds.batch(batch_size).map(plain(lambda s: parse_batch(s, spec)), num_parallel_calls=AUTOTUNE)
    if cache:
        ds = ds.cache()
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(AUTOTUNE)
