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

The preprocessing workers write it from the processor's parsed columns without TensorFlow
(:mod:`pipelines.columnar_chunk`); TensorFlow is imported only to convert existing tf.Example shards,
to write a compressed copy, and in :func:`chunk_parse_spec` (the training stream's reader).
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import typing
from collections.abc import Sequence
from typing import Any

from pipelines import feature_spec as fs
from pipelines.columnar_chunk import Columns, encode_chunk
from pipelines.example_codec import tfrecord_frames
from pipelines.parse_spec import parse_spec
from pipelines.schema import Column, Schema

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


def writer_spec(schema: Schema, columns: Sequence[Column]) -> fs.FeatureSpec:
    """Names and kinds of the columns of a preprocessing run (all the writer needs of the spec)."""
    feats = tuple(fs.Feature(name=c.name, kind=typing.cast(fs.Kind, c.kind),
                             dtype="float32" if c.kind == "numeric" else "string") for c in columns)
    return fs.FeatureSpec(dataset=schema.name, label=fs.Label(name=schema.label.name), features=feats)


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
    """Writes the chunk records of one columnar shard from rows in order: the processor's
    :class:`~pipelines.columnar_chunk.Columns` (no TensorFlow) or serialized tf.Examples (parsed)."""

    def __init__(self, path: str, spec: fs.FeatureSpec, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                 compression: str = "") -> None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        self._spec = spec
        self._chunk_rows = chunk_rows
        self._pending = Columns()
        self._out = _RecordFile(path, compression)
        self.rows = 0
        self.chunks = 0

    def write(self, records: Sequence[bytes]) -> None:
        """Append serialized tf.Example rows (parsed here, with TensorFlow)."""
        if records:
            self.write_columns(parsed_columns(list(records), self._spec))

    def write_columns(self, cols: Columns) -> None:
        """Append rows; every full chunk is written at once."""
        self._pending.extend(cols)
        while len(self._pending) >= self._chunk_rows:
            self._flush(self._pending.take(self._chunk_rows))

    def close(self) -> None:
        if len(self._pending):
            self._flush(self._pending.take(len(self._pending)))
        self._out.close()

    def _flush(self, cols: Columns) -> None:
        self._out.write(encode_chunk(cols, ROWS, EXAMPLE_ID, HOLDOUT_BUCKET, ID_BUCKETS, HOLDOUT_BUCKETS,
                                     ROW_LENGTHS))
        self.rows += len(cols)
        self.chunks += 1


class _RecordFile:
    """A TFRecord file: uncompressed through Beam's FileSystems (no TensorFlow), or TensorFlow's writer."""

    def __init__(self, path: str, compression: str) -> None:
        if compression:
            import tensorflow as tf

            directory = posixpath.dirname(path)
            if directory:
                tf.io.gfile.makedirs(directory)
            self._tf = tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type=compression))
        else:
            from apache_beam.io.filesystem import CompressionTypes
            from apache_beam.io.filesystems import FileSystems

            self._fh = FileSystems.create(path, mime_type="application/octet-stream",
                                          compression_type=CompressionTypes.UNCOMPRESSED)

    def write(self, record: bytes) -> None:
        if hasattr(self, "_tf"):
            self._tf.write(record)
        else:
            self._fh.write(tfrecord_frames((record,)))

    def close(self) -> None:
        (self._tf if hasattr(self, "_tf") else self._fh).close()


def parsed_columns(records: list[bytes], spec: fs.FeatureSpec) -> Columns:
    """The columns of serialized tf.Example rows, parsed with TensorFlow (converting existing shards)."""
    import tensorflow as tf

    parsed = tf.io.parse_example(tf.constant(records, tf.string), parse_spec(spec))

    def floats(name: str) -> list[bytes]:
        data = parsed[name].numpy().astype("<f4").tobytes()
        return [data[i : i + 4] for i in range(0, len(data), 4)]

    cols = Columns(records, {spec.label.name: floats(spec.label.name)})
    for f in spec.features:
        if f.kind == "numeric":
            cols.floats[f.name] = floats(f.name)
        elif f.kind == "categorical":
            cols.strings[f.name] = parsed[f.name].numpy().tolist()
        else:
            cols.multi[f.name] = [tuple(v) for v in parsed[f.name].to_list()]
    return cols


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
