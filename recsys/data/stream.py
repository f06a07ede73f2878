"""The training input stream: a pure function of the global step, so a restarted job resumes exactly.

The stream is the train split repeated epoch after epoch. Epoch ``e`` reads the shards in an order
drawn from ``(data_seed, e)``, interleaves them deterministically and permutes each block of
``shuffle_block`` consecutive records with a stateless shuffle seeded by ``(data_seed, e, block)``.
Nothing depends on TensorFlow's global seed, on the model seed or on iterator state, so the record at
position ``r`` of the stream is known without reading anything before it, and the stream restarted at
global step ``s`` skips straight to epoch ``s * batch // N`` and then ``(s * batch) % N`` records.

Sharding, chosen by ``data.sharding``:

- ``global_batch`` (default): every worker reads the whole stream, cuts it into *global* batches and
  keeps its own consecutive rows of each. Every global batch holds the same examples whatever the
  worker count, so 1, 2 or N workers differ only in the order of the gradient sums.
- ``file``: worker ``i`` reads every ``num_workers``-th shard and batches its own stream (each
  worker reads only its share; the batches depend on the worker count).

With ``data.validation_fraction`` > 0 the records whose hash (FarmHash Fingerprint64 of the
serialized bytes) falls in the lowest fraction of :data:`HASH_BUCKETS` are the validation split: the
stream drops them before anything else, so positions count train records only and the stream stays a
pure function of the step; :func:`validation_dataset` reads exactly those records.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.feature_spec import FeatureSpec
from recsys.compat import tf
from recsys.data.input import AUTOTUNE, parse_batch, shard_files

EXAMPLE_ID = "__example_id__"  # the visit-log feature: a fingerprint of the serialized record
_MIX = 0x9E3779B1  # stateless seeds: (data_seed, epoch * _MIX + block) never collide in practice
HASH_BUCKETS = 1 << 30  # validation membership: hash bucket < fraction * HASH_BUCKETS


@dataclass(frozen=True)
class StreamSpec:
    """Everything that decides which records make global batch ``k`` (and nothing else)."""

    global_batch: int
    data_seed: int = 0
    shuffle_block: int = 0  # 0: no shuffling at all (file order, every epoch)
    sharding: str = "global_batch"  # or "file"
    num_workers: int = 1
    worker_index: int = 0
    replicas_per_worker: int = 1
    validation_fraction: float = 0.0  # records held out of the stream (see the module docstring)

    def __post_init__(self) -> None:
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"data.validation_fraction must be in [0, 1), got {self.validation_fraction}")
        replicas = self.num_workers * self.replicas_per_worker
        if self.global_batch % replicas:
            raise ValueError(f"data.batch_size={self.global_batch} must be divisible by the number of "
                             f"replicas ({self.num_workers} workers x {self.replicas_per_worker})")
        if self.sharding not in ("global_batch", "file"):
            raise ValueError(f"data.sharding must be 'global_batch' or 'file', got {self.sharding!r}")

    @property
    def replica_batch(self) -> int:
        return self.global_batch // (self.num_workers * self.replicas_per_worker)

    @property
    def worker_batch(self) -> int:
        return self.replica_batch * self.replicas_per_worker


def worker_files(spec: FeatureSpec, stream: StreamSpec) -> list[str]:
    """The train shards this worker reads (all of them unless sharding by file)."""
    files = shard_files(spec, "train")
    if stream.sharding == "file":
        if len(files) < stream.num_workers:
            raise ValueError(f"data.sharding=file needs at least one train shard per worker: "
                             f"{len(files)} shards for {stream.num_workers} workers")
        files = files[stream.worker_index :: stream.num_workers]
    return files


def in_validation(serialized: tf.Tensor, fraction: float) -> tf.Tensor:
    """True for the records of the validation split (any shape of serialized records)."""
    bucket = tf.strings.to_hash_bucket_fast(serialized, HASH_BUCKETS)
    return bucket < int(round(fraction * HASH_BUCKETS))


def _records(spec: FeatureSpec, files: list[str]) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(files, compression_type=spec.data.compression or None)


def count_records(spec: FeatureSpec, files: list[str], validation_fraction: float = 0.0) -> int:
    """Train records in ``files`` (the spec's train count when they are all the train shards and
    nothing is held out for validation)."""
    if not validation_fraction and files == shard_files(spec, "train") and spec.counts.written_train:
        return spec.counts.written_train
    ds = _records(spec, files)
    if validation_fraction:
        ds = ds.filter(lambda r: tf.logical_not(in_validation(r, validation_fraction)))
    return int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1).numpy())


def validation_dataset(spec: FeatureSpec, fraction: float, batch_size: int) -> tf.data.Dataset:
    """The validation split held out of the train shards: one pass, in file order, parsed batches."""
    ds = _records(spec, shard_files(spec, "train")).filter(lambda r: in_validation(r, fraction))
    ds = ds.batch(batch_size).map(lambda s: parse_batch(s, spec), num_parallel_calls=AUTOTUNE,
                                  deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(AUTOTUNE)


def _epoch_records(spec: FeatureSpec, files: list[str], stream: StreamSpec, epoch: tf.Tensor,
                   skip: tf.Tensor) -> tf.data.Dataset:
    """Epoch ``epoch``'s records in its shuffled order, the first ``skip`` of them left out."""
    names = tf.constant(files)
    seed = tf.stack([tf.constant(stream.data_seed, tf.int64), tf.cast(epoch, tf.int64) * _MIX])
    if stream.shuffle_block:
        names = tf.random.experimental.stateless_shuffle(names, seed=seed)
    ds = tf.data.Dataset.from_tensor_slices(names).interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=spec.data.compression or None),
        cycle_length=min(len(files), 4), block_length=1, num_parallel_calls=AUTOTUNE, deterministic=True)
    if stream.validation_fraction:
        ds = ds.filter(lambda r: tf.logical_not(in_validation(r, stream.validation_fraction)))
    if not stream.shuffle_block:
        return ds.skip(skip)
    block = stream.shuffle_block
    first_block = skip // block  # whole blocks before the resume point are never shuffled
    ds = ds.skip(first_block * block).batch(block)
    ds = ds.enumerate(start=first_block).map(
        lambda i, recs: tf.random.experimental.stateless_shuffle(recs, seed=seed + tf.stack([0, i])),
        num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.unbatch().skip(skip - first_block * block)


def train_stream(spec: FeatureSpec, stream: StreamSpec, start_step: int = 0, *,
                 with_ids: bool = False, num_records: int | None = None) -> tf.data.Dataset:
    """Per-replica ``(features, labels)`` batches of this worker, from global step ``start_step`` on.

    Element ``j`` of the dataset goes to local replica ``j % replicas_per_worker`` (as
    ``distribute_datasets_from_function`` hands them out). ``with_ids`` adds :data:`EXAMPLE_ID`
    (int64 fingerprints of the serialized records) to the features, for visit logs.
    """
    files = worker_files(spec, stream)
    n = num_records if num_records is not None else count_records(spec, files, stream.validation_fraction)
    if n <= 0:
        raise ValueError(f"the train split has no records ({', '.join(files)})")
    per_step = stream.global_batch if stream.sharding == "global_batch" else stream.worker_batch
    position = start_step * per_step
    first_epoch, offset = divmod(position, n)
    epochs = tf.data.Dataset.range(first_epoch, tf.int64.max)
    ds = epochs.flat_map(lambda e: _epoch_records(
        spec, files, stream, e, tf.where(tf.equal(e, first_epoch), tf.constant(offset, tf.int64), 0)))
    ds = ds.batch(per_step, drop_remainder=True)
    if stream.sharding == "global_batch" and stream.num_workers > 1:
        lo = stream.worker_index * stream.worker_batch
        ds = ds.map(lambda b: b[lo : lo + stream.worker_batch])
    r = stream.replicas_per_worker
    if r > 1:  # this worker's rows, split into one consecutive batch per local replica
        ds = ds.map(lambda b: tf.reshape(b, [r, stream.replica_batch])).unbatch()

    def parse(serialized: tf.Tensor) -> tuple[dict, tf.Tensor]:
        features, labels = parse_batch(serialized, spec)
        if with_ids:
            features[EXAMPLE_ID] = tf.strings.to_hash_bucket_fast(serialized, tf.int64.max)
        return features, labels

    ds = ds.map(parse, num_parallel_calls=AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(AUTOTUNE)
