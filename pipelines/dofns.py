"""The pipeline's DoFns: process a chunk end to end, resolve dead-letter line numbers, write the spec.

Pure and importable (no module-level state), so remote workers unpickle them by reference.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import pickle
import posixpath
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines import feature_spec as fs
from pipelines.chunks import Chunk, LineBatches, batches, read_chunk, read_chunk_at, split_lines
from pipelines.config import PreprocessConfig
from pipelines.failures import ErrorBudgetExceeded, NoRowsError, record
from pipelines.progress import ChunkProgress
from pipelines.stats import CategoricalAcc, NumericAcc, build_vocabulary

log = logging.getLogger(__name__)
ERRORS = "errors"
STATS = "stats"
NAMESPACE = "preprocess"


@dataclass(frozen=True)
class ChunkInfo:
    """What one chunk did: its line count (header included) and where its rows went."""

    index: int
    path: str
    start: int
    lines: int
    read: int
    train: int
    eval: int
    dead: int
    # Time windows only: (rows, first, last time) of each train window of the chunk, then of its eval rows.
    spans: tuple = ()


def shard_path(output: str, split: str, index: int, total: int) -> str:
    return posixpath.join(output, split, f"part-{index:05d}-of-{total:05d}.tfrecord.gz")


def _join(base: str, *parts: str) -> str:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.join(base, *parts)


class ProcessChunk(beam.DoFn):
    """Read a chunk, validate/split/encode it in batches, write its train and eval shards.

    Main output: one ChunkInfo. Tagged outputs: ``errors`` (path, chunk start, index in chunk,
    code, reason, raw bytes) and ``stats`` (feature name, accumulator over training rows).
    Shard names depend only on the chunk index, so a retried chunk overwrites its own files.
    """

    def __init__(self, config: PreprocessConfig, num_chunks: int):
        self.config = config
        self.num_chunks = int(num_chunks)

    def setup(self) -> None:
        from pipelines.processor import BatchProcessor

        cfg = self.config
        enricher = None
        if cfg.source == "movielens":
            from pipelines.sources.movielens import MovieLensJoin

            enricher = MovieLensJoin(cfg.movielens_dir)
        self.processor = BatchProcessor(cfg.schema, enricher)
        self.processor.columnar = bool(cfg.columnar_chunk_rows)  # the columnar copy takes parsed columns
        self.generator = None
        if cfg.source == "synthetic":
            from pipelines.sources.synthetic import DEFAULT_CARDINALITIES, SyntheticCriteo

            p = cfg.synthetic
            assert p is not None  # PreprocessConfig.validate() requires it for this source
            self.generator = SyntheticCriteo(p.seed, p.cardinalities or DEFAULT_CARDINALITIES, p.zipf)
        self.c_lines = Metrics.counter(NAMESPACE, "1_lines_read")
        self.c_valid = Metrics.counter(NAMESPACE, "2_rows_valid")
        self.c_dead = Metrics.counter(NAMESPACE, "3_rows_dead_lettered")
        self.c_train = Metrics.counter(NAMESPACE, "4_written_train")
        self.c_eval = Metrics.counter(NAMESPACE, "5_written_eval")
        self.c_chunks = Metrics.counter(NAMESPACE, "0_chunks")
        self.progress = ChunkProgress(self.num_chunks)

    def _columnar_spec(self) -> fs.FeatureSpec:
        from pipelines import columnar

        return columnar.writer_spec(self.config.schema, self.processor.features)

    def _lines(self, chunk: Chunk) -> tuple[int, list[bytes]]:
        """(file offset of the first line, the chunk's lines); a synthetic chunk's first row number."""
        if self.generator is not None:
            return chunk.start, self.generator.lines(chunk.start, chunk.end)
        begin, data = read_chunk_at(chunk)
        return begin, split_lines(data, file_end=chunk.file_end)

    @staticmethod
    def _total_lines(chunk: Chunk, stream: LineBatches | None, done: int, known: int) -> int:
        """The chunk's line count for a progress line: known, or estimated from the bytes read so far."""
        if stream is None or not stream.bytes:
            return known
        size = (chunk.end - chunk.start) if chunk.end >= 0 else chunk.size
        return max(done, round(done * max(size, stream.bytes) / stream.bytes))

    def process(self, chunk: Chunk, time_threshold: float | None = None, cuts=None) -> Iterable:
        from pipelines.example_codec import GzipTFRecordWriter

        cfg = self.config
        proc = self.processor
        if time_threshold is not None:
            proc.time_threshold = time_threshold
        started = self.progress.start_chunk()
        proc.reset_stats()
        by_window = positions = None
        if cfg.windows or self.generator is not None:  # every line at once (row positions need them all)
            begin, lines = self._lines(chunk)
            first = 1 if (chunk.skip_header and lines) else 0
            stream = None
            source: Iterable[tuple[int, list[bytes]]] = batches(lines[first:], cfg.batch_lines)
        else:  # a block of the file at a time: the chunk's bytes and lines are never all held
            stream = LineBatches(chunk, cfg.batch_lines)
            source, lines, first = stream, [], 0
        if cfg.windows:  # the train rows go to their time window's shards (pipelines/windows.py)
            from pipelines import windows

            proc.cuts = cuts if cuts is not None else windows.row_cuts(cfg)
            if not windows.time_column(cfg):
                positions = windows.positions(chunk, begin, lines, self.generator is not None)[first:]
            by_window = windows.Writers(cfg, chunk.index, self.num_chunks, self._columnar_spec())
        splits = ("eval",) if by_window else ("train", "eval")
        writers = {
            split: GzipTFRecordWriter(
                shard_path(cfg.output, split, chunk.index, self.num_chunks), cfg.compression_level
            )
            for split in splits
        }
        chunk_writer = None
        if cfg.columnar_chunk_rows and not by_window:  # the columnar copy of this chunk's train shard
            from pipelines import columnar

            chunk_writer = columnar.ColumnarWriter(
                columnar.shard_path(cfg.output, chunk.index, self.num_chunks), self._columnar_spec(),
                cfg.columnar_chunk_rows)
        n_train = n_eval = n_dead = 0
        for offset, batch in source:
            if stream is not None:
                first = stream.first
            res = proc.process(batch, None if positions is None else positions[offset : offset + len(batch)])
            if res.examples:
                is_eval = res.is_eval.tolist()
                eval_rows = list(itertools.compress(res.examples, is_eval))
                if by_window is not None:
                    assert res.times is not None and res.window is not None  # proc.cuts is set
                    n_train += by_window.write(res.examples, res.is_eval, res.times, res.window, res.columns)
                else:
                    train_rows = list(itertools.compress(res.examples, [not e for e in is_eval]))
                    writers["train"].write(train_rows)
                    if chunk_writer is not None and res.columns is not None:
                        chunk_writer.write_columns(res.columns)  # the train rows
                    n_train += len(train_rows)
                writers["eval"].write(eval_rows)
                n_eval += len(eval_rows)
            for e in res.errors:
                n_dead += 1
                yield beam.pvalue.TaggedOutput(
                    ERRORS,
                    (chunk.path, int(chunk.start), first + offset + e.index, e.code, e.reason, e.raw),
                )
            done = first + offset + len(batch)
            self.progress.in_chunk(chunk.index + 1, done, self._total_lines(chunk, stream, done, len(lines)),
                                   started)
        if stream is not None:
            first, total_lines = stream.first, stream.lines
        else:
            total_lines = len(lines)
        for w in writers.values():
            w.close()
        if chunk_writer is not None:
            chunk_writer.close()
        spans = by_window.close() if by_window is not None else ()
        for name, acc in proc.accs.items():
            yield beam.pvalue.TaggedOutput(STATS, (name, acc))
        read = total_lines - first
        seconds = max(time.monotonic() - started, 1e-9)
        log.info(
            "chunk %d/%d (%s @%d): %d rows -> train %d, eval %d, dead-lettered %d in %.1f s (%s rows/s)",
            chunk.index + 1, self.num_chunks, chunk.path, chunk.start, read, n_train, n_eval,
            n_dead, seconds, f"{read / seconds:,.0f}",
        )  # fmt: skip
        self.progress.chunk_done(read)
        self.c_chunks.inc()
        self.c_lines.inc(read)
        self.c_valid.inc(n_train + n_eval)
        self.c_dead.inc(n_dead)
        self.c_train.inc(n_train)
        self.c_eval.inc(n_eval)
        yield ChunkInfo(
            int(chunk.index), chunk.path, int(chunk.start), total_lines, read, n_train, n_eval, n_dead, spans
        )


class SampleTimes(beam.DoFn):
    """Per chunk: (valid time values, 1,001 evenly spaced order statistics) of the time column.

    Feeds the automatic time split (``time_threshold`` unset): the eval rows are the latest
    ``eval_fraction`` of the data. Unparseable rows are skipped here; the main pass dead-letters them.
    """

    def __init__(self, config: PreprocessConfig):
        self.config = config

    def process(self, chunk: Chunk):
        import numpy as np

        schema = self.config.schema
        pos = schema.column_names.index(schema.split.time_column)
        delim, ncols = schema.delimiter.encode("utf-8"), len(schema.columns)
        lines = split_lines(read_chunk(chunk), file_end=chunk.file_end)[1 if chunk.skip_header else 0 :]
        values = []
        for fields in (ln.split(delim) for ln in lines):
            if len(fields) == ncols:
                try:
                    values.append(float(fields[pos]))
                except ValueError:
                    pass
        arr = np.asarray([v for v in values if v == v], dtype=np.float64)
        if arr.size:
            yield int(arr.size), np.quantile(arr, np.linspace(0.0, 1.0, 1001)).tolist()


def time_threshold(samples: list[tuple[int, list[float]]], eval_fraction: float, output: str) -> float:
    """Weighted quantile: rows with time >= the result are about ``eval_fraction`` of all rows."""
    points = sorted((v, n / len(q)) for n, q in samples for v in q)
    if not points:
        raise record(output, NoRowsError("no parseable value in the time column; cannot place the time "
                                         "split"))
    total = sum(w for _, w in points)
    target, acc = (1.0 - eval_fraction) * total, 0.0
    for v, w in points:
        acc += w
        if acc >= target:
            return float(v)
    return float(points[-1][0])


def first_lines(infos: list[ChunkInfo]) -> dict[tuple[str, int], int]:
    """(path, chunk start) -> 1-based line number of the chunk's first line."""
    out: dict[tuple[str, int], int] = {}
    for path, group in itertools.groupby(
        sorted(infos, key=lambda i: (i.path, i.start)), key=lambda i: i.path
    ):
        line = 1
        for info in group:
            out[(path, info.start)] = line
            line += info.lines
    return out


def error_record(err: tuple, firsts: dict[tuple[str, int], int]) -> str:
    """One dead-letter JSON line: source file, 1-based line number, raw text, reason."""
    path, start, index, code, reason, raw = err
    return json.dumps(
        {
            "file": path,
            "line": firsts[(path, start)] + index,
            "code": code,
            "reason": reason,
            "raw": raw.decode("utf-8", errors="backslashreplace"),
        },
        ensure_ascii=False,
    )


def pack_stat(feature_acc: tuple) -> tuple[str, bytes]:
    """A feature's merged (name, accumulator) with the accumulator pickled: a few objects for the side
    input's size estimate, and WriteSpec unpickles one feature's counts at a time."""
    name, acc = feature_acc
    return name, zlib.compress(pickle.dumps(acc, protocol=pickle.HIGHEST_PROTOCOL), 1)


def unpack_stat(packed: bytes):
    """The accumulator :func:`pack_stat` packed."""
    return pickle.loads(zlib.decompress(packed))


def _write_text(path: str, text: str) -> None:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path, mime_type="text/plain") as fh:
        fh.write(text.encode("utf-8"))


class WriteSpec(beam.DoFn):
    """Check the error budget, write vocabularies and ``feature_spec.json`` (runs once)."""

    def __init__(self, config: PreprocessConfig, num_chunks: int):
        self.config = config
        self.num_chunks = int(num_chunks)

    def process(self, _, infos, packed_stats, errors_written, time_threshold=None, cuts=None):
        cfg = self.config
        packed = dict(packed_stats)  # pack_stat's (feature, pickled merged accumulator) pairs
        counts = fs.Counts(
            read=sum(i.read for i in infos),
            written_train=sum(i.train for i in infos),
            written_eval=sum(i.eval for i in infos),
            dead_lettered=sum(i.dead for i in infos),
        )
        assert counts.read == counts.written_train + counts.written_eval + counts.dead_lettered
        errors_at = posixpath.join(cfg.output, "errors-*.jsonl")
        if counts.read == 0:
            raise record(cfg.output, NoRowsError(f"no rows were read from {list(cfg.inputs) or cfg.source}"))
        fraction = counts.dead_lettered / counts.read
        if fraction > cfg.max_error_fraction:
            raise record(cfg.output, ErrorBudgetExceeded(
                f"{counts.dead_lettered} of {counts.read} rows ({fraction:.2%}) were dead-lettered, "
                f"above --max_error_fraction={cfg.max_error_fraction:g}; see {errors_at}. "
                "No feature spec was written."
            ))
        schema = cfg.schema
        split = fs.Split(
            method=schema.split.method,
            key=tuple(schema.split.key) if schema.split.method == "hash" else (schema.split.time_column,),
            eval_fraction=schema.split.eval_fraction,
            salt=schema.split.salt,
            time_threshold=schema.split.time_threshold if time_threshold is None else time_threshold,
        )
        extra: dict = {"split": split}
        if cfg.windows:  # the windows, and the split they imply
            from pipelines import windows

            extra = windows.spec_fields(cfg, [i.spans for i in infos], split, cuts)
        features = [self._feature(col, unpack_stat(packed[col.name]) if col.name in packed else None)
                    for col in self._columns()]  # one feature's value counts in memory at a time
        spec = fs.FeatureSpec(
            dataset=schema.name,
            label=fs.Label(name=schema.label.name, rule=schema.label.describe()),
            features=tuple(features),
            data=self._data_files(counts.written_train),
            counts=counts,
            **extra,
        )
        text = json.dumps(spec.to_dict(), indent=2) + "\n"
        _write_text(posixpath.join(cfg.output, fs.SPEC_FILENAME), text)
        yield spec.to_dict()

    def _data_files(self, train_rows: int) -> fs.DataFiles:
        files = fs.DataFiles(num_train_shards=self.num_chunks, num_eval_shards=self.num_chunks)
        if self.config.windows:  # every window's shards; each window's own: spec.windows
            from pipelines import windows

            return windows.data_files(files, self.config, train_rows)
        if not self.config.columnar_chunk_rows:
            return files
        from pipelines import columnar

        return dataclasses.replace(
            files,
            columnar_pattern=columnar.PATTERN,
            columnar_chunk_rows=self.config.columnar_chunk_rows,
            columnar_rows=train_rows,
        )

    def _columns(self):
        from pipelines.processor import BatchProcessor

        enricher = None
        if self.config.source == "movielens":
            from pipelines.sources.movielens import MovieLensJoin

            enricher = MovieLensJoin(self.config.movielens_dir)
        return BatchProcessor(self.config.schema, enricher).features

    def _feature(self, col, acc) -> fs.Feature:
        cfg = self.config
        if col.kind == "numeric":
            acc = acc or NumericAcc()
            return fs.Feature(
                name=col.name,
                kind="numeric",
                dtype="float32",
                default=col.default,
                transform=fs.NumericTransform(col.clip_min, col.clip_max, col.log1p),
                stats=fs.NumericStats(
                    mean=acc.mean,
                    variance=acc.variance,
                    count=acc.count,
                    missing=acc.missing,
                    min=acc.min if acc.count else None,
                    max=acc.max if acc.count else None,
                ),
            )
        acc = acc or CategoricalAcc()
        cardinality = acc.cardinality
        common = dict(
            name=col.name,
            kind=col.kind,
            dtype="string",
            cardinality=cardinality,
            separator=col.separator if col.kind == "multi_categorical" else "",
            max_values=acc.max_values if col.kind == "multi_categorical" else 0,
        )
        if acc.overflowed or (cfg.hash_threshold and cardinality > cfg.hash_threshold):
            return fs.Feature(
                **common, encoding="hash", num_oov_buckets=0,
                hash_buckets=cfg.hash_buckets or cfg.hash_threshold,
            )  # fmt: skip
        vocab = build_vocabulary(acc.counts, cfg.min_frequency, cfg.top_k)
        if not vocab:  # an empty vocabulary file cannot back a lookup table: all values are OOV
            log.warning(
                "feature %s: no value reaches min_frequency=%d in the training split; "
                "encoding it as %d hash bucket(s) (all values out of vocabulary)",
                col.name, cfg.min_frequency, cfg.num_oov_buckets,
            )  # fmt: skip
            return fs.Feature(**common, encoding="hash", num_oov_buckets=0, hash_buckets=cfg.num_oov_buckets)
        relative = f"vocab/{col.name}.txt"
        _write_text(
            posixpath.join(cfg.output, relative),
            "".join(v.decode("utf-8") + "\n" for v, _ in vocab),
        )
        return fs.Feature(
            **common, encoding="vocabulary", vocabulary_file=relative,
            vocabulary_size=len(vocab), num_oov_buckets=cfg.num_oov_buckets,
        )  # fmt: skip
