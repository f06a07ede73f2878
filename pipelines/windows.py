"""Time windows of the train split (``recsys preprocess --windows N``): what orders the rows, where the
cuts fall, which shard a row goes to, and what the spec records of each window.

With N >= 2 the rows are ordered in time and the eval split is the latest ``eval_fraction`` of them;
the train rows before it are cut into N consecutive windows, window 0 the oldest. What "time" is:

- MovieLens: the rating's ``timestamp`` (order ``timestamp``); a ``--source=csv`` schema with a time
  column: that column (``time_column:<name>``). The eval threshold (unless given) and the N - 1 window
  boundaries are weighted quantiles of the time values (``SampleTimes``: 1,001 per chunk), the
  boundaries of the train rows' times only. A row whose time equals a boundary goes to the later window
  (as a row at the eval threshold goes to eval).
- Criteo, synthetic and a schema without a time column: row order (``row_order``). A row's time is its
  byte position: the offset of its first byte in the inputs laid end to end (in the sorted order of the
  input files), divided by their total size, so it is known in one pass, without counting rows first.
  The cuts are fixed fractions: eval is a position >= 1 - eval_fraction, window i the positions in
  [i, i + 1) * (1 - eval_fraction) / N. The windows hold nearly equal rows when rows have similar
  lengths. In a compressed file a row's offset is scaled from the decompressed bytes to the file's
  size; a synthetic row's position is its row number divided by the row count.

Every window is written to its own shards, ``train/w{i}-part-*`` (and ``train_columnar/w{i}-part-*``),
and all windows share one feature spec: the vocabularies and statistics are computed over every train
window together (see docs/preprocess.md, "Time windows").
"""

from __future__ import annotations

import dataclasses
import itertools
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from pipelines import feature_spec as fs
from pipelines.chunks import Chunk
from pipelines.columnar_chunk import Columns
from pipelines.config import PreprocessConfig
from pipelines.failures import NoRowsError, record

SHARD_TEMPLATE = "w{window}-part-{index:05d}-of-{total:05d}"
TRAIN_PATTERN = "train/w{window}-part-*.tfrecord.gz"
COLUMNAR_PATTERN = "train_columnar/w{window}-part-*.tfrecord"
ALL = "*"  # the window part of a pattern that matches every window


@dataclass(frozen=True)
class Cuts:
    """Time >= ``threshold``: eval; a train row's window: how many ``bounds`` are <= its time."""

    threshold: float
    bounds: tuple[float, ...]

    def window(self, times: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.bounds, np.float64), times, side="right")


def time_column(config: PreprocessConfig) -> str:
    """The column that orders the rows ("" for row order)."""
    if config.schema.split.time_column:
        return config.schema.split.time_column
    return "timestamp" if config.source == "movielens" else ""


def order(config: PreprocessConfig) -> str:
    """What orders the rows, as the spec records it."""
    column = time_column(config)
    if not column:
        return fs.ORDER_ROWS
    return fs.ORDER_TIMESTAMP if config.source == "movielens" else fs.ORDER_COLUMN + column


def prepare(config: PreprocessConfig) -> PreprocessConfig:
    """A windowed config whose rows have a time column splits on it (the eval split is the latest rows)."""
    column = time_column(config) if config.windows else ""
    if not column:
        return config
    split = dataclasses.replace(config.schema.split, method="time", key=(), time_column=column)
    return dataclasses.replace(config, schema=dataclasses.replace(config.schema, split=split).validate())


def _quantile(points: Sequence[tuple[float, float]], fraction: float) -> float:
    """The first value whose cumulative weight reaches ``fraction`` of the total."""
    target, acc = fraction * sum(w for _, w in points), 0.0
    for v, w in points:
        acc += w
        if acc >= target:
            return float(v)
    return float(points[-1][0])


def sampled_cuts(samples: list[tuple[int, list[float]]], config: PreprocessConfig) -> Cuts:
    """The cuts from ``SampleTimes``' per-chunk quantiles: the eval threshold (the schema's, or the time
    above which lies the latest eval_fraction) and N - 1 quantiles of the train rows' times."""
    points = sorted((v, n / len(q)) for n, q in samples for v in q)
    if not points:
        raise record(config.output, NoRowsError(
            f"no parseable value in the time column {time_column(config)!r}; cannot place the windows"))
    split = config.schema.split
    threshold = split.time_threshold
    if threshold is None:
        threshold = _quantile(points, 1.0 - split.eval_fraction)
    train = [(v, w) for v, w in points if v < threshold]
    if not train:
        raise record(config.output, NoRowsError(f"no row has a time before the eval threshold {threshold:g}"))
    n = config.windows
    return Cuts(float(threshold), tuple(_quantile(train, k / n) for k in range(1, n)))


def row_cuts(config: PreprocessConfig) -> Cuts:
    """The fixed cuts of row order: positions are fractions of the inputs, eval the last eval_fraction."""
    train = 1.0 - config.schema.split.eval_fraction
    n = config.windows
    return Cuts(train, tuple(train * k / n for k in range(1, n)))


def positions(chunk: Chunk, begin: int, lines: Sequence[bytes], synthetic: bool) -> np.ndarray:
    """Each line's time for row order: the byte position of its first byte in all the inputs / their size.

    ``begin`` is the file offset of ``lines[0]`` (:func:`pipelines.chunks.read_chunk_at`). Synthetic
    chunks count rows: ``chunk.start`` is a row number and ``chunk.total`` the row count.
    """
    if synthetic:
        return (chunk.start + np.arange(len(lines), dtype=np.float64)) / max(chunk.total, 1)
    lengths = np.fromiter(map(len, lines), np.float64, len(lines)) + 1.0
    offsets = np.concatenate([[0.0], np.cumsum(lengths)[:-1]]) if len(lines) else np.zeros(0)
    if chunk.end < 0 and chunk.size:  # a whole (maybe compressed) file: scale to its size on disk
        offsets = offsets * (chunk.size / max(float(lengths.sum()), 1.0))
    return (chunk.base + begin + offsets) / max(chunk.total, 1)


def shard_name(window: int, index: int, total: int) -> str:
    return SHARD_TEMPLATE.format(window=window, index=index, total=total)


def train_shard(output: str, window: int, index: int, total: int) -> str:
    return posixpath.join(output, "train", shard_name(window, index, total) + ".tfrecord.gz")


def columnar_shard(output: str, window: int, index: int, total: int) -> str:
    return posixpath.join(output, "train_columnar", shard_name(window, index, total) + ".tfrecord")


def clean_patterns(output: str) -> list[str]:
    """What an earlier windowed run left, for ``clean_output``."""
    return [posixpath.join(output, d, "w*-part-*") for d in ("train", "train_columnar")]


# -- spans: rows, first and last time, merged over chunks -----------------------------------------------
Acc = tuple[int, float | None, float | None]  # (rows, first time, last time); picklable for ChunkInfo


def add(acc: Acc, times: np.ndarray) -> Acc:
    if not times.size:
        return acc
    rows, lo, hi = acc
    t_lo, t_hi = float(times.min()), float(times.max())
    return (rows + int(times.size), t_lo if lo is None else min(lo, t_lo),
            t_hi if hi is None else max(hi, t_hi))


def merge(accs: Iterable[Acc]) -> Acc:
    rows, lo, hi = 0, None, None
    for n, first, last in accs:
        if n:
            rows += n
            lo = first if lo is None else min(lo, first)  # type: ignore[type-var]
            hi = last if hi is None else max(hi, last)  # type: ignore[type-var]
    return rows, lo, hi


def spec_fields(config: PreprocessConfig, per_chunk: list[tuple[Acc, ...]], split: fs.Split,
                cuts: Cuts | None) -> dict:
    """The spec's ``windows``, ``eval_window`` and ``split`` of a windowed run (row order: the split is
    ``row_order``, its threshold a byte-position fraction; a time column: its threshold as cut)."""
    windows, eval_window = spec_windows(config, per_chunk)
    if not time_column(config):
        split = fs.Split(method=fs.ORDER_ROWS, eval_fraction=split.eval_fraction,
                         time_threshold=row_cuts(config).threshold)
    elif cuts is not None:
        split = dataclasses.replace(split, time_threshold=cuts.threshold)
    return {"windows": windows, "eval_window": eval_window, "split": split}


def data_files(files: fs.DataFiles, config: PreprocessConfig, train_rows: int) -> fs.DataFiles:
    """The spec's patterns of every window's shards (one shard per chunk and window)."""
    files = dataclasses.replace(files, train_pattern=TRAIN_PATTERN.format(window=ALL),
                                num_train_shards=files.num_train_shards * config.windows)
    if not config.columnar_chunk_rows:
        return files
    return dataclasses.replace(files, columnar_pattern=COLUMNAR_PATTERN.format(window=ALL),
                               columnar_chunk_rows=config.columnar_chunk_rows, columnar_rows=train_rows)


def spec_windows(config: PreprocessConfig,
                 per_chunk: list[tuple[Acc, ...]]) -> tuple[tuple[fs.Window, ...], fs.Span]:
    """The spec's windows and eval span from every chunk's (window 0, ..., window N-1, eval) spans.

    A window without rows (ties in the time column, or more windows than rows) fails the run.
    """
    how = order(config)
    n = config.windows
    merged = [merge(spans[i] for spans in per_chunk) for i in range(n + 1)]
    empty = [i for i in range(n) if not merged[i][0]]
    if empty:
        raise record(config.output, NoRowsError(
            f"time window(s) {empty} of {n} have no train rows (ordered by {how}); ask for fewer --windows"))
    columnar = COLUMNAR_PATTERN if config.columnar_chunk_rows else ""
    windows = tuple(
        fs.Window(index=i, rows=rows, order=how, first=lo, last=hi,
                  train_pattern=TRAIN_PATTERN.format(window=i),
                  columnar_pattern=columnar.format(window=i))
        for i, (rows, lo, hi) in enumerate(merged[:n]))
    rows, lo, hi = merged[n]
    return windows, fs.Span(rows=rows, order=how, first=lo, last=hi)


class Writers:
    """One chunk's train shards, one per window (and their columnar copies), and the spans of its rows."""

    def __init__(self, config: PreprocessConfig, index: int, total: int, columnar_spec: fs.FeatureSpec):
        from pipelines.example_codec import GzipTFRecordWriter

        n = config.windows
        level = config.compression_level
        self.train = [GzipTFRecordWriter(train_shard(config.output, w, index, total), level)
                      for w in range(n)]
        self.columnar: list = []
        if config.columnar_chunk_rows:
            from pipelines import columnar

            self.columnar = [columnar.ColumnarWriter(columnar_shard(config.output, w, index, total),
                                                     columnar_spec, config.columnar_chunk_rows)
                             for w in range(n)]
        self.spans: list[Acc] = [(0, None, None)] * (n + 1)  # windows 0..n-1, then eval

    def write(self, examples: list[bytes], is_eval: np.ndarray, times: np.ndarray, window: np.ndarray,
              columns: Columns | None = None) -> int:
        """Write the train rows of a batch to their windows' shards (the columnar copies from
        ``columns``, the batch's train rows parsed); returns how many."""
        n = len(self.train)
        self.spans[n] = add(self.spans[n], times[is_eval])
        written = 0
        train_window = window[~is_eval]
        for w in range(n):
            mine = (window == w) & ~is_eval
            if not mine.any():
                continue
            keep = mine.tolist()
            rows = list(itertools.compress(examples, keep))
            self.train[w].write(rows)
            if self.columnar:
                assert columns is not None  # the processor's columnar flag is on with the copy
                self.columnar[w].write_columns(columns.select((train_window == w).tolist()))
            self.spans[w] = add(self.spans[w], times[mine])
            written += len(rows)
        return written

    def close(self) -> tuple[Acc, ...]:
        for writer in [*self.train, *self.columnar]:
            writer.close()
        return tuple(self.spans)
