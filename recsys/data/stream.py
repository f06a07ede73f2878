"""The training input stream: a pure function of the global step, so a restarted job resumes exactly.

The stream is the train split repeated epoch after epoch. Epoch ``e`` reads the shards one after the
other in an order drawn from ``(data_seed, e)`` and permutes each block of ``shuffle_block``
consecutive records with a stateless shuffle seeded by ``(data_seed, e, block)``. Nothing depends on
TensorFlow's global seed, on the model seed or on iterator state, so the record at position ``r`` of
the stream is known without reading anything before it, and the stream restarted at global step
``s`` skips straight to epoch ``s * batch // N`` and then ``(s * batch) % N`` records.

Everything after reading runs on *chunks* of rows (column tensors), never on single records: the
tf.Example shards are parsed ``CHUNK_ROWS`` records at a time; the columnar shards
(:mod:`pipelines.columnar`, written by ``recsys preprocess``) are already chunks and are parsed once
per chunk. Both formats hold the same rows in the same order, so they give the same batches, bit for
bit (``data.format`` is a neutral setting); the columnar one is several times cheaper to read.

Sharding, chosen by ``data.sharding``:

- ``global_batch`` (default): every worker reads the whole stream, cuts it into *global* batches and
  keeps its own consecutive rows of each. Every global batch holds the same examples whatever the
  worker count, so 1, 2 or N workers differ only in the order of the gradient sums.
- ``file``: worker ``i`` reads every ``num_workers``-th shard and batches its own stream (each
  worker reads only its share; the batches depend on the worker count).

With ``data.validation_fraction`` > 0 the records whose hash (FarmHash Fingerprint64 of the
serialized tf.Example) falls in the lowest fraction of :data:`HASH_BUCKETS` are the validation split:
the stream drops them before anything else, so positions count train records only and the stream
stays a pure function of the step; :func:`validation_dataset` reads exactly those records.

With ``data.windows`` (a spec written by ``recsys preprocess --windows N``) the train split is the
selected time windows' shards only, window after window: the epoch length, the validation split and
everything above are those windows'. () reads every window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines import columnar
from pipelines.feature_spec import FeatureSpec
from pipelines.parse_spec import parse_spec
from recsys.compat import tf
from recsys.data.input import AUTOTUNE, parse_batch, plain, shard_files

EXAMPLE_ID = columnar.EXAMPLE_ID  # the visit-log feature: a fingerprint of the serialized record
HOLDOUT = columnar.HOLDOUT_BUCKET
_MIX = 0x9E3779B1  # stateless seeds: (data_seed, epoch * _MIX + block) never collide in practice
HASH_BUCKETS = columnar.HOLDOUT_BUCKETS  # validation membership: hash bucket < fraction * HASH_BUCKETS
CHUNK_ROWS = 1024  # tf.Example records parsed together
Chunk = dict[str, Any]  # column name -> [n] tensor (RaggedTensor for multi-valued features)


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
    columnar: bool = False  # read the columnar shards (same records, same batches, cheaper)
    windows: tuple[int, ...] = ()  # the train split's time windows read (data.windows; () = all)

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


def use_columnar(spec: FeatureSpec, data_format: str) -> bool:
    """Whether the stream reads the columnar shards: ``data.format`` auto (when the spec has them),
    columnar (required) or tfexample."""
    has = bool(spec.data.columnar_pattern)
    if data_format == "columnar" and not has:
        raise ValueError(f"data.format=columnar, but {spec.path('feature_spec.json')} names no columnar "
                         "shards (run `recsys preprocess` again, or pipelines.columnar.add_columnar)")
    return has and data_format != "tfexample"


def _columnar_files(spec: FeatureSpec, windows: tuple[int, ...] = ()) -> list[str]:
    patterns = spec.columnar_patterns(windows)
    files = [f for p in patterns for f in sorted(tf.io.gfile.glob(spec.path(p)))]
    expected = len(shard_files(spec, "train", windows))
    if len(files) != expected:
        where = ", ".join(repr(spec.path(p)) for p in patterns)
        raise ValueError(f"{len(files)} columnar shards match {where} for {expected} train shards: the "
                         "columnar copy is incomplete (rewrite it, or set data.format=tfexample)")
    return files


def train_files(spec: FeatureSpec, windows: tuple[int, ...] = (), columnar: bool = False) -> list[str]:
    """The train shards of the selected windows (all for ()), in the tf.Example or the columnar copy."""
    return _columnar_files(spec, windows) if columnar else shard_files(spec, "train", windows)


def worker_files(spec: FeatureSpec, stream: StreamSpec) -> list[str]:
    """The train shards this worker reads (all of them unless sharding by file), in the stream's format."""
    files = train_files(spec, stream.windows, stream.columnar)
    if stream.sharding == "file":
        if len(files) < stream.num_workers:
            raise ValueError(f"data.sharding=file needs at least one train shard per worker: "
                             f"{len(files)} shards for {stream.num_workers} workers")
        files = files[stream.worker_index :: stream.num_workers]
    return files


def in_validation(serialized: tf.Tensor, fraction: float) -> tf.Tensor:
    """True for the records of the validation split (any shape of serialized records)."""
    return _held_out(tf.strings.to_hash_bucket_fast(serialized, HASH_BUCKETS), fraction)


def _held_out(bucket: tf.Tensor, fraction: float) -> tf.Tensor:
    return bucket < int(round(fraction * HASH_BUCKETS))


def _records(spec: FeatureSpec, files: list[str]) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(files, compression_type=spec.data.compression or None)


# -- chunks -------------------------------------------------------------------------------------------
def _example_chunks(spec: FeatureSpec, names: tf.Tensor | list[str]) -> tf.data.Dataset:
    """tf.Example shards, read one after another, as parsed chunks of ``CHUNK_ROWS`` records."""

    def parse(serialized: tf.Tensor) -> Chunk:
        chunk = dict(tf.io.parse_example(serialized, parse_spec(spec)))
        chunk[EXAMPLE_ID] = tf.strings.to_hash_bucket_fast(serialized, tf.int64.max)
        chunk[HOLDOUT] = tf.strings.to_hash_bucket_fast(serialized, HASH_BUCKETS)
        return chunk

    ds = tf.data.TFRecordDataset(names, compression_type=spec.data.compression or None,
                                 buffer_size=1 << 20)
    return ds.batch(CHUNK_ROWS).map(plain(parse), num_parallel_calls=AUTOTUNE, deterministic=True)


def _columnar_chunks(spec: FeatureSpec, names: tf.Tensor | list[str]) -> tf.data.Dataset:
    """Columnar shards, read one after another, one parse per chunk record."""
    features = columnar.chunk_parse_spec(spec)

    def parse(record: tf.Tensor) -> Chunk:
        chunk = dict(tf.io.parse_single_example(record, features))
        chunk.pop(columnar.ROWS)
        return chunk

    ds = tf.data.TFRecordDataset(names, compression_type=spec.data.columnar_compression or None,
                                 buffer_size=1 << 22)
    return ds.map(plain(parse), num_parallel_calls=AUTOTUNE, deterministic=True)


def _chunks(spec: FeatureSpec, stream: StreamSpec, names: tf.Tensor | list[str]) -> tf.data.Dataset:
    ds = (_columnar_chunks if stream.columnar else _example_chunks)(spec, names)
    if stream.validation_fraction:
        fraction = stream.validation_fraction
        ds = ds.map(plain(lambda c: _select(c, tf.logical_not(_held_out(c[HOLDOUT], fraction)))),
                    num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds


def _rows(chunk: Chunk) -> tf.Tensor:
    return tf.shape(chunk[HOLDOUT], out_type=tf.int64)[0]


def _nonempty(chunk: Chunk) -> tf.Tensor:
    return _rows(chunk) > 0


def _select(chunk: Chunk, mask: tf.Tensor) -> Chunk:
    index = tf.where(mask)[:, 0]
    return {k: tf.ragged.boolean_mask(v, mask) if isinstance(v, tf.RaggedTensor) else _take(v, index)
            for k, v in chunk.items()}


def _slice(chunk: Chunk, lo: Any, hi: Any) -> Chunk:
    return {k: v[lo:hi] for k, v in chunk.items()}


def _gather(chunk: Chunk, index: tf.Tensor) -> Chunk:
    return {k: _take(v, index) for k, v in chunk.items()}


def _take(values: Any, index: tf.Tensor) -> Any:
    """``tf.gather(values, index)``, the same values: a string column through ``gather_nd``, whose
    kernel copies strings for about half the CPU of ``gather``'s (the block shuffle's largest cost)."""
    if isinstance(values, tf.Tensor) and values.dtype == tf.string:
        return tf.gather_nd(values, index[:, None])
    return tf.gather(values, index)


def _skip_rows(ds: tf.data.Dataset, count: int) -> tf.data.Dataset:
    """``ds`` (chunks) without its first ``count`` rows; chunks are cut, never unbatched."""
    if not count:
        return ds

    def step(remaining: tf.Tensor, chunk: Chunk) -> tuple[tf.Tensor, Chunk]:
        n = _rows(chunk)
        drop = tf.minimum(remaining, n)
        return remaining - drop, _slice(chunk, drop, n)

    return ds.scan(tf.cast(count, tf.int64), plain(step)).filter(plain(_nonempty))


def _keeps_own_rows(stream: StreamSpec) -> bool:
    """Whether this worker drops the other workers' rows before gathering (global-batch sharding)."""
    return stream.sharding == "global_batch" and stream.num_workers > 1


def _epoch_chunks(spec: FeatureSpec, files: list[str], stream: StreamSpec, epoch: tf.Tensor,
                  skip: int, epoch_rows: int) -> tf.data.Dataset:
    """Epoch ``epoch``'s records in its shuffled order, as chunks, the first ``skip`` rows left out.

    With global-batch sharding over several workers only this worker's rows of every global batch
    are kept (rows whose stream position ``epoch * epoch_rows + p`` falls in its slice of a batch),
    and they are dropped before the block's gather, so each worker copies only its share.
    """
    names = tf.constant(files)
    seed = tf.stack([tf.constant(stream.data_seed, tf.int64), tf.cast(epoch, tf.int64) * _MIX])
    if stream.shuffle_block:
        names = tf.random.experimental.stateless_shuffle(names, seed=seed)
    ds = _chunks(spec, stream, names)
    own = _keeps_own_rows(stream)
    lo, width = stream.worker_index * stream.worker_batch, stream.worker_batch
    origin = tf.cast(epoch, tf.int64) * epoch_rows

    def mine(positions: tf.Tensor) -> tf.Tensor:
        """This worker's rows among epoch positions ``positions`` (after the resume point)."""
        in_batch = tf.math.floormod(origin + positions, stream.global_batch) - lo
        return (positions >= skip) & (in_batch >= 0) & (in_batch < width)

    if not stream.shuffle_block:
        if not own:
            return _skip_rows(ds, skip)

        def select(start: tf.Tensor, chunk: Chunk) -> tuple[tf.Tensor, Chunk]:
            n = _rows(chunk)
            return start + n, _select(chunk, mine(start + tf.range(n)))

        return ds.scan(tf.constant(0, tf.int64), plain(select)).filter(plain(_nonempty))
    block = stream.shuffle_block
    first_block = skip // block  # whole blocks before the resume point are never shuffled

    def permute(i: tf.Tensor, rows: Chunk) -> Chunk:
        n = _rows(rows)
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=seed + tf.stack([0, i]))
        if own:  # the permuted row j sits at epoch position i * block + j
            order = tf.boolean_mask(order, mine(i * block + tf.range(n)))
        return _gather(rows, order)

    ds = _skip_rows(ds, first_block * block).rebatch(block)
    ds = ds.enumerate(start=first_block).map(plain(permute), num_parallel_calls=AUTOTUNE, deterministic=True)
    if own:
        return ds.filter(plain(_nonempty))
    return _skip_rows(ds, skip - first_block * block)


def count_records(spec: FeatureSpec, files: list[str], validation_fraction: float = 0.0,
                  use_columnar: bool = False, windows: tuple[int, ...] = ()) -> int:
    """Train records in ``files`` (the spec's count when they are all the shards of the selected
    windows, or of the whole train split, and nothing is held out for validation)."""
    chosen = spec.select_windows(windows)
    known = sum(w.rows for w in chosen) if chosen else spec.counts.written_train
    if not validation_fraction and known and files == train_files(spec, windows, use_columnar):
        return known
    stream = StreamSpec(global_batch=1, validation_fraction=validation_fraction, columnar=use_columnar)
    ds = _chunks(spec, stream, files)
    return int(ds.reduce(tf.constant(0, tf.int64), plain(lambda n, c: n + _rows(c))).numpy())


def validation_dataset(spec: FeatureSpec, fraction: float, batch_size: int,
                       windows: tuple[int, ...] = ()) -> tf.data.Dataset:
    """The validation split held out of the train shards (of the selected windows): one pass, in file
    order, parsed batches."""
    records = _records(spec, shard_files(spec, "train", windows))
    ds = records.filter(plain(lambda r: in_validation(r, fraction)))
    ds = ds.batch(batch_size).map(plain(lambda s: parse_batch(s, spec)), num_parallel_calls=AUTOTUNE,
                                  deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(AUTOTUNE)


def train_stream(spec: FeatureSpec, stream: StreamSpec, start_step: int = 0, *,
                 with_ids: bool = False, num_records: int | None = None) -> tf.data.Dataset:
    """Per-replica ``(features, labels)`` batches of this worker, from global step ``start_step`` on.

    Element ``j`` of the dataset goes to local replica ``j % replicas_per_worker`` (as
    ``distribute_datasets_from_function`` hands them out). ``with_ids`` adds :data:`EXAMPLE_ID`
    (int64 fingerprints of the serialized records) to the features, for visit logs.
    """
    files = worker_files(spec, stream)
    n = (num_records if num_records is not None
         else count_records(spec, files, stream.validation_fraction, stream.columnar))
    if n <= 0:
        raise ValueError(f"the train split has no records ({', '.join(files)})")
    per_step = stream.global_batch if stream.sharding == "global_batch" else stream.worker_batch
    position = start_step * per_step
    first_epoch, offset = divmod(position, n)
    later = tf.data.Dataset.range(first_epoch + 1, tf.int64.max)
    ds = _epoch_chunks(spec, files, stream, tf.constant(first_epoch, tf.int64), offset, n).concatenate(
        later.flat_map(plain(lambda e: _epoch_chunks(spec, files, stream, e, 0, n))))
    # Global-batch sharding keeps this worker's slice of every global batch (already selected).
    ds = ds.rebatch(stream.worker_batch if _keeps_own_rows(stream) else per_step, drop_remainder=True)
    r, rb = stream.replicas_per_worker, stream.replica_batch
    if r > 1:  # this worker's rows, split into one consecutive batch per local replica
        def replica_batches(b: Chunk) -> tf.data.Dataset:
            return tf.data.Dataset.range(r).map(plain(lambda j: _slice(b, j * rb, (j + 1) * rb)))

        ds = ds.flat_map(plain(replica_batches))
    names = [f.name for f in spec.features] + ([EXAMPLE_ID] if with_ids else [])

    def split(batch: Chunk) -> tuple[dict[str, Any], tf.Tensor]:
        return {k: batch[k] for k in names}, batch[spec.label.name]

    ds = ds.map(plain(split))
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    # No model-based autotuning: its per-element bookkeeping cost about a fifth of the stream's CPU
    # (docs/training.md, "Where the input's time goes"). The parallel maps then run min(16, cores)
    # calls and the final prefetch still grows its buffer on demand; the batches are the same.
    options.autotune.enabled = False
    return ds.with_options(options).prefetch(AUTOTUNE)
