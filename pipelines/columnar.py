"""The columnar training format: the train split pre-batched into chunks of rows, parsed once per chunk.

Written by ``recsys preprocess`` beside the tf.Example shards (one columnar shard per train shard,
the same rows in the same order) and read by the training input stream, which is then no longer
limited by parsing one tf.Example per row. The tf.Example shards stay the contract: serving, the
eval split and every reader that does not know this format use them, and a spec without columnar
shards trains from them exactly as before (both formats give the same batches, bit for bit).

One record is a tf.Example holding up to ``chunk_rows`` consecutive rows of its shard, column by
column:

- :data:`ROWS`: ``int64_list`` [n], the number of rows in the chunk;
- the label and every numeric feature: ``float_list`` of n values (NaN where a value was missing,
  as parsing the row's tf.Example gives);
- a categorical feature: ``bytes_list`` of n values ("" where missing);
- a multi-valued categorical: ``bytes_list`` of all values, and ``<name>/row_lengths``
  (``int64_list`` of n);
- :data:`EXAMPLE_ID` and :data:`HOLDOUT_BUCKET`: ``int64_list`` of n, FarmHash Fingerprint64 of the
  row's serialized tf.Example modulo 2^63-1 and 2^30 (the visit-log id and the validation split's
  hash, computed from the tf.Example bytes so both formats agree).

TensorFlow is imported only inside the functions that write (Beam workers and the benchmark) and in
:func:`chunk_parse_spec` (the training stream's reader).
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from collections.abc import Iterable, Sequence
from typing import Any

from pipelines import feature_spec as fs
from pipelines.parse_spec import parse_spec

COLUMNAR_DIR = "train_columnar"
PATTERN = f"{COLUMNAR_DIR}/part-*.tfrecord"
ROWS = "__rows__"
EXAMPLE_ID = "__example_id__"
HOLDOUT_BUCKET = "__holdout_bucket__"
ROW_LENGTHS = "/row_lengths"
HOLDOUT_BUCKETS = 1 << 30  # the validation split: bucket < fraction * HOLDOUT_BUCKETS
ID_BUCKETS = (1 << 63) - 1  # tf.int64.max, as the visit log hashes a record
DEFAULT_CHUNK_ROWS = 1024


def shard_path(output: str, index: int, total: int) -> str:
    """The columnar shard of train shard ``index`` (same numbering as the tf.Example shards)."""
    return posixpath.join(output, COLUMNAR_DIR, f"part-{index:05d}-of-{total:05d}.tfrecord")


def chunk_parse_spec(spec: fs.FeatureSpec) -> dict[str, Any]:
    """The ``tf.io.parse_single_example`` features dict of one chunk record (the reader's side of the
    layout above): every column a ragged [n] row, a multi-valued categorical ragged twice."""
    import tensorflow as tf

    out: dict[str, Any] = {ROWS: tf.io.FixedLenFeature([1], tf.int64)}
    for name, dtype in ((spec.label.name, tf.float32), (EXAMPLE_ID, tf.int64), (HOLDOUT_BUCKET, tf.int64)):
        out[name] = tf.io.RaggedFeature(dtype, row_splits_dtype=tf.int64)
    for f in spec.features:
        if f.kind == "numeric":
            out[f.name] = tf.io.RaggedFeature(tf.float32, row_splits_dtype=tf.int64)
        elif f.kind == "categorical":
            out[f.name] = tf.io.RaggedFeature(tf.string, row_splits_dtype=tf.int64)
        else:
            out[f.name] = tf.io.RaggedFeature(
                tf.string, partitions=[tf.io.RaggedFeature.RowLengths(f.name + ROW_LENGTHS)],
                row_splits_dtype=tf.int64)
    return out


class ColumnarWriter:
    """Turns serialized tf.Example rows (in order) into chunk records of one columnar shard."""

    def __init__(self, path: str, spec: fs.FeatureSpec, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                 compression: str = "") -> None:
        import tensorflow as tf

        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        self._tf = tf
        self._spec = spec
        self._parse = parse_spec(spec)
        self._chunk_rows = chunk_rows
        self._pending: list[bytes] = []
        directory = posixpath.dirname(path)
        if directory:
            tf.io.gfile.makedirs(directory)
        self._writer = tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type=compression))
        self.rows = 0
        self.chunks = 0

    def write(self, records: Iterable[bytes]) -> None:
        """Append rows; every full chunk is written at once."""
        self._pending.extend(records)
        while len(self._pending) >= self._chunk_rows:
            self._flush(self._pending[: self._chunk_rows])
            del self._pending[: self._chunk_rows]

    def close(self) -> None:
        if self._pending:
            self._flush(self._pending)
            self._pending = []
        self._writer.close()

    def _flush(self, rows: Sequence[bytes]) -> None:
        tf = self._tf
        serialized = tf.constant(list(rows), tf.string)
        parsed = tf.io.parse_example(serialized, self._parse)
        example = tf.train.Example()
        feature = example.features.feature
        n = len(rows)
        feature[ROWS].int64_list.value.append(n)
        feature[EXAMPLE_ID].int64_list.value.extend(
            tf.strings.to_hash_bucket_fast(serialized, ID_BUCKETS).numpy().tolist())
        feature[HOLDOUT_BUCKET].int64_list.value.extend(
            tf.strings.to_hash_bucket_fast(serialized, HOLDOUT_BUCKETS).numpy().tolist())
        feature[self._spec.label.name].float_list.value.extend(parsed[self._spec.label.name].numpy().tolist())
        for f in self._spec.features:
            value = parsed[f.name]
            if f.kind == "numeric":
                feature[f.name].float_list.value.extend(value.numpy().tolist())
            elif f.kind == "categorical":
                feature[f.name].bytes_list.value.extend(value.numpy().tolist())
            else:
                feature[f.name].bytes_list.value.extend(value.flat_values.numpy().tolist())
                feature[f.name + ROW_LENGTHS].int64_list.value.extend(value.row_lengths().numpy().tolist())
        self._writer.write(example.SerializeToString(deterministic=True))  # map order fixed: same bytes
        self.rows += n
        self.chunks += 1


def convert_shard(src: str, dst: str, spec: fs.FeatureSpec, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                  compression: str = "") -> int:
    """Write the columnar copy of one tf.Example shard; returns its row count."""
    import tensorflow as tf

    writer = ColumnarWriter(dst, spec, chunk_rows, compression)
    for records in tf.data.TFRecordDataset(src, compression_type=spec.data.compression or None).batch(8192):
        writer.write(records.numpy().tolist())
    writer.close()
    return writer.rows


def with_columnar(spec: fs.FeatureSpec, rows: int, chunk_rows: int, compression: str = "") -> fs.FeatureSpec:
    """The spec naming the columnar shards (``rows`` train rows in them; each time window's own)."""
    from pipelines import windows

    pattern = windows.COLUMNAR_PATTERN.format(window=windows.ALL) if spec.windows else PATTERN
    data = dataclasses.replace(spec.data, columnar_pattern=pattern, columnar_compression=compression,
                               columnar_chunk_rows=chunk_rows, columnar_rows=rows)
    parts = tuple(dataclasses.replace(w, columnar_pattern=windows.COLUMNAR_PATTERN.format(window=w.index))
                  for w in spec.windows)
    return dataclasses.replace(spec, data=data, windows=parts)


def add_columnar(spec_dir: str, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                 compression: str = "") -> fs.FeatureSpec:
    """Write the columnar shards of an existing preprocessed output and update its spec (old outputs,
    the benchmark's writer). Train shard ``i`` of ``N`` becomes columnar shard ``i`` of ``N``; a time
    window's shard ``train/w{k}-part-*`` becomes ``train_columnar/w{k}-part-*``."""
    import tensorflow as tf

    spec = fs.load(spec_dir)
    sources = sorted(tf.io.gfile.glob(spec.path(spec.data.train_pattern)))
    if not sources:
        raise FileNotFoundError(f"no train shards match {spec.path(spec.data.train_pattern)!r}")
    root = spec.root or spec_dir
    for old in tf.io.gfile.glob(os.path.join(root, COLUMNAR_DIR, "*part-*")):
        tf.io.gfile.remove(old)
    if spec.windows:
        targets = [posixpath.join(root, COLUMNAR_DIR, posixpath.basename(src).removesuffix(".gz"))
                   for src in sources]
    else:
        targets = [shard_path(root, i, len(sources)) for i in range(len(sources))]
    rows = sum(convert_shard(src, dst, spec, chunk_rows, compression)
               for src, dst in zip(sources, targets, strict=True))
    updated = with_columnar(spec, rows, chunk_rows, compression)
    updated.save(root)
    return updated
