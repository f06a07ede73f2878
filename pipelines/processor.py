"""Batch row processing: validate, split, encode tf.Examples and accumulate stats, a batch at a time.

Per-row Python is kept to C-level builtins (``bytes.split``, ``zip``, ``Counter.update``, dict
lookups): every (column, raw value) is parsed and encoded once and cached, since values repeat.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines import example_codec
from pipelines.columnar_chunk import NAN32, Columns
from pipelines.fast_batch import FastBatch
from pipelines.schema import Column, Schema
from pipelines.split_hash import split_is_eval
from pipelines.stats import CategoricalAcc, NumericAcc

_BAD = object()  # cache value of a raw token that fails validation
_MISSING = (b"", math.nan)
_CACHE_LIMIT = 200_000  # per-column cache entries before the cache is reset (bounded memory)
_PREFIX_MAX = 128  # categorical values shorter than this use a precomputed field prefix


@dataclass
class Error:
    """A dead-lettered row: index within its chunk, a short reason code and a readable reason."""

    index: int
    code: str
    reason: str
    raw: bytes


@dataclass
class BatchResult:
    examples: list[bytes]
    is_eval: np.ndarray
    errors: list[Error] = field(default_factory=list)
    # Time windows only (``cuts`` set): each example's time and its train window (eval rows: ignore).
    times: np.ndarray | None = None
    window: np.ndarray | None = None
    # With ``BatchProcessor.columnar``: the train rows' values, for the columnar copy (no second parse).
    columns: Columns | None = None


class Enricher:
    """Adds columns to a batch from lookup tables (e.g. a MovieLens join); subclass per source."""

    def columns(self) -> list[Column]:
        return []

    def enrich(self, cols: dict[str, Sequence[bytes]]) -> tuple[dict[str, list[bytes]], dict]:
        """Return (new columns, {row: (code, reason)}) for rows that cannot be enriched."""
        return {}, {}


def _is_bad(entry) -> bool:
    return entry is _BAD or (type(entry) is tuple and len(entry) == 3 and entry[0] is _BAD)


class BatchProcessor:
    """Turns batches of raw lines into serialised tf.Examples plus per-feature accumulators."""

    def __init__(self, schema: Schema, enricher: Enricher | None = None):
        self.schema = schema
        self.enricher = enricher or Enricher()
        self.delim = schema.delimiter.encode("utf-8")
        self.ncols = len(schema.columns)
        self.pos = {c.name: i for i, c in enumerate(schema.columns)}
        self.label_fn = schema.label.compile()
        self.label_pos = self.pos[schema.label.column]
        self.features: list[Column] = schema.features + self.enricher.columns()
        self.names = {c.name: c.name.encode("utf-8") for c in self.features}
        self.caches: dict[str, dict] = {c.name: {} for c in self.features}
        self.time_threshold = schema.split.time_threshold  # set per run when computed
        self.cuts: Any = None  # pipelines.windows.Cuts of a windowed run: eval and windows by time
        self.columnar = False  # also return each batch's Columns (the columnar copy's input)
        self.label_cache: dict[bytes, object] = {}
        self.time_cache: dict[bytes, object] = {}
        self.label_name = schema.label.name.encode("utf-8")
        self.label_fields = {
            0.0: example_codec.float_field(self.label_name, 0.0),
            1.0: example_codec.float_field(self.label_name, 1.0),
        }
        self.fast = FastBatch(self) if type(self.enricher) is Enricher and FastBatch.applies(self) else None
        self.reset_stats()

    def reset_stats(self) -> None:
        self.raw_accs: dict[str, NumericAcc | CategoricalAcc] = {
            c.name: NumericAcc() if c.kind == "numeric" else CategoricalAcc() for c in self.features}
        if self.fast is not None:
            self.fast.pending.clear()

    @property
    def accs(self) -> dict[str, NumericAcc | CategoricalAcc]:
        """Each feature's statistics over the train rows processed since ``reset_stats``."""
        if self.fast is not None:
            self.fast.flush_counts()
        return self.raw_accs

    # -- validation helpers -------------------------------------------------------------------
    def _label(self, raw: bytes):
        if raw == b"" or raw.isspace():
            return _BAD, "missing_label", f"label column {self.schema.label.column!r} is empty"
        try:
            return self.label_fn(raw.decode("utf-8").strip()), "", ""
        except ValueError as err:
            return _BAD, "bad_label", f"label {raw!r}: {err}"

    @staticmethod
    def _number(raw: bytes) -> float:
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError("not finite")
        return value

    def _numeric_entry(self, col: Column, raw: bytes):
        """(encoded field, transformed value) for one raw numeric token, or _BAD."""
        if raw == b"" or raw.isspace():
            return _MISSING
        try:
            value = self._number(raw)
        except ValueError:
            return _BAD
        t = value
        if col.clip_min is not None:
            t = max(t, col.clip_min)
        if col.clip_max is not None:
            t = min(t, col.clip_max)
        if col.log1p:
            if t <= -1.0:
                return _BAD
            t = math.log1p(t)
        try:
            return example_codec.float_field(self.names[col.name], value), t
        except OverflowError:  # finite, but beyond float32 (the tf.Example's type): dead-lettered
            return _BAD

    def numeric_tokens(self, col: Column, uniq: set[bytes]) -> tuple[dict, dict, dict, set]:
        """A numeric column's caches (encoded field, transformed value, float32 bytes per raw token), each
        of ``uniq`` in them, and the bad tokens among ``uniq`` (both batch paths parse through here)."""
        fcache, tcache, badset, vcache = self.caches[col.name].setdefault("numeric", ({}, {}, set(), {}))
        if len(fcache) > _CACHE_LIMIT:
            fcache.clear()
            tcache.clear()
            vcache.clear()
        for v in uniq.difference(fcache):
            entry = self._numeric_entry(col, v)
            if entry is _BAD:
                badset.add(v)
                fcache[v], tcache[v], vcache[v] = b"", math.nan, NAN32
            else:
                fcache[v], tcache[v] = entry
                vcache[v] = entry[0][-4:] if entry[0] else NAN32  # the float32 the tf.Example holds
        return fcache, tcache, vcache, uniq.intersection(badset) if badset else set()

    def _numeric(self, col: Column, values: Sequence[bytes]) -> tuple[list[bytes], list[float], set]:
        """Encoded fields, transformed values (NaN = missing) and the bad raw tokens of a column."""
        fcache, tcache, _, bad = self.numeric_tokens(col, set(values))
        return list(map(fcache.__getitem__, values)), list(map(tcache.__getitem__, values)), bad

    def prefixes(self, col: Column) -> list[bytes]:
        """A categorical column's encoded field up to its value, for each value length below _PREFIX_MAX."""
        prefix = self.caches[col.name].get("prefix")
        if prefix is None:
            name = self.names[col.name]
            prefix = [b""] + [
                example_codec.bytes_field(name, (b"\0" * n,))[:-n] for n in range(1, _PREFIX_MAX)
            ]
            self.caches[col.name]["prefix"] = prefix
        return prefix

    def _categorical(self, col: Column, values: Sequence[bytes]) -> list[bytes]:
        """Encoded single-value bytes_list fields (b"" for a missing value)."""
        prefix = self.prefixes(col)
        try:
            return list(map(operator.add, map(prefix.__getitem__, map(len, values)), values))
        except IndexError:  # a value longer than the table: encode it the slow way
            name = self.names[col.name]
            return [
                prefix[len(v)] + v if len(v) < _PREFIX_MAX else example_codec.bytes_field(name, (v,))
                for v in values
            ]

    @staticmethod
    def fill_cache(cache: dict, uniq: set[bytes], make) -> None:
        """Every value of ``uniq`` in ``cache``, missing entries computed with ``make`` (the cache is
        emptied first when it outgrew its limit)."""
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        for v in uniq.difference(cache):
            cache[v] = make(v)

    def _cached_map(self, cache: dict, values: Sequence[bytes], make) -> list:
        """[cache[v] for v in values], computing missing entries with ``make``."""
        uniq = set(values)
        self.fill_cache(cache, uniq, make)
        self._last_bad = any(_is_bad(cache[v]) for v in uniq)
        return list(map(cache.__getitem__, values))

    # -- the batch ----------------------------------------------------------------------------
    def process(self, lines: list[bytes], positions: np.ndarray | None = None) -> BatchResult:
        """Validate, split and encode one batch; every rejected row comes back as an Error.

        ``positions`` (row-order time windows): each line's time, used instead of a time column.
        """
        errors: list[Error] = []
        idx = list(range(len(lines)))
        raw = lines
        enc = self.schema.encoding.lower().replace("_", "-")
        joined = b"\n".join(lines)
        if enc in ("utf-8", "utf8"):
            try:
                joined.decode("utf-8")
            except UnicodeDecodeError:
                ok = []
                for i, line in enumerate(lines):
                    try:
                        line.decode("utf-8")
                        ok.append(i)
                    except UnicodeDecodeError as err:
                        errors.append(Error(i, "undecodable", f"not valid UTF-8: {err}", line))
                idx = ok
                lines = [lines[i] for i in ok]
        else:
            ok, converted = [], []
            for i, line in enumerate(lines):
                try:
                    converted.append(line.decode(enc).encode("utf-8"))
                    ok.append(i)
                except UnicodeDecodeError as err:
                    errors.append(Error(i, "undecodable", f"not valid {enc}: {err}", line))
            idx, lines = ok, converted
        if (self.fast is not None and positions is None and self.cuts is None and not errors
                and b"\r" not in joined):
            fast = self.fast.process(lines, joined)
            if fast is not None:
                return fast
        if b"\r" in joined:
            lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]

        rows = [ln.split(self.delim) for ln in lines]
        bad: dict[int, tuple[str, str]] = {}
        if b"" in lines:
            for j, ln in enumerate(lines):
                if not ln:
                    bad[j] = ("empty_line", "empty line")
        lens = set(map(len, rows))
        if lens != {self.ncols}:
            for j, r in enumerate(rows):
                if len(r) != self.ncols and j not in bad:
                    bad[j] = ("field_count", f"expected {self.ncols} fields, got {len(r)}")
        if bad:
            keep = [j for j in range(len(rows)) if j not in bad]
            errors += [Error(idx[j], c, r, raw[idx[j]]) for j, (c, r) in bad.items()]
            idx = [idx[j] for j in keep]
            lines = [lines[j] for j in keep]
            rows = [rows[j] for j in keep]
            bad = {}
        if not rows:
            return BatchResult([], np.zeros(0, dtype=bool), errors)

        colvals = list(zip(*rows, strict=True))
        cols: dict[str, Sequence[bytes]] = {c.name: colvals[i] for i, c in enumerate(self.schema.columns)}
        extra, extra_bad = self.enricher.enrich(cols)
        cols.update(extra)
        bad.update(extra_bad)

        labels = self._cached_map(self.label_cache, cols[self.schema.label.column], self._label)
        if self._last_bad:
            for j, (v, code, reason) in enumerate(labels):
                if v is _BAD and j not in bad:
                    bad[j] = (code, reason)

        encoded: dict[str, list] = {}
        transformed: dict[str, list] = {}
        for col in self.features:
            values = cols[col.name]
            if col.kind == "numeric":
                enc_col, transformed[col.name], bad_tokens = self._numeric(col, values)
                if bad_tokens:
                    for j, v in enumerate(values):
                        if v in bad_tokens and j not in bad:
                            bad[j] = ("bad_numeric",
                                      f"column {col.name!r}: not a finite float32 number: {v!r}")
            elif col.kind == "categorical":
                enc_col = self._categorical(col, values)
            else:
                sep = col.separator.encode("utf-8")
                name = self.names[col.name]

                def make_multi(v: bytes, n=name, s=sep):
                    vals = tuple(x for x in v.split(s) if x) if v else ()
                    return example_codec.bytes_field(n, vals), vals

                cache = self.caches[col.name].setdefault("multi", {})
                enc_col = self._cached_map(cache, values, make_multi)
            encoded[col.name] = enc_col

        times = None
        split = self.schema.split
        if positions is not None:
            times = positions[idx].tolist()
        elif split.method == "time":
            times = self._cached_map(self.time_cache, cols[split.time_column], self._time)
            for j, t in enumerate(times if self._last_bad else ()):
                if t is _BAD and j not in bad:
                    bad[j] = (
                        "bad_time",
                        f"time column {split.time_column!r}: {cols[split.time_column][j]!r} is not a number",
                    )

        n = len(rows)
        if bad:
            keep = [j for j in range(n) if j not in bad]
            errors += [Error(idx[j], c, r, raw[idx[j]]) for j, (c, r) in bad.items()]
            lines = [lines[j] for j in keep]
            labels = [labels[j] for j in keep]
            cols = {k: [v[j] for j in keep] for k, v in cols.items()}
            encoded = {k: [v[j] for j in keep] for k, v in encoded.items()}
            transformed = {k: [v[j] for j in keep] for k, v in transformed.items()}
            if times is not None:
                times = [times[j] for j in keep]
            n = len(keep)
        if n == 0:
            return BatchResult([], np.zeros(0, dtype=bool), errors)

        if self.cuts is not None:
            t = np.asarray(times, dtype=np.float64)
            is_eval = t >= self.cuts.threshold
            examples = self._encode(labels, encoded, transformed, cols, ~is_eval)
            return BatchResult(examples, is_eval, errors, t, self.cuts.window(t),
                               self._columns(examples, labels, encoded, cols, (~is_eval).tolist()))
        if split.method == "time":
            assert self.time_threshold is not None  # set per run before a time split is processed
            is_eval = np.asarray(times, dtype=np.float64) >= self.time_threshold
        else:
            if split.key:
                keys = (
                    cols[split.key[0]]
                    if len(split.key) == 1
                    else [b"\x1f".join(t) for t in zip(*(cols[k] for k in split.key), strict=True)]
                )
            else:
                keys = lines
            is_eval = split_is_eval(keys, split.eval_fraction, split.salt)
        examples = self._encode(labels, encoded, transformed, cols, ~is_eval)
        columns = self._columns(examples, labels, encoded, cols, (~is_eval).tolist())
        return BatchResult(examples, is_eval, errors, columns=columns)

    def _columns(self, examples: list[bytes], labels: list, encoded: dict[str, list],
                 cols: dict[str, Sequence[bytes]], train: list[bool]) -> Columns | None:
        """The train rows as columns of the values their tf.Examples hold (``columnar`` only)."""
        if not self.columnar:
            return None

        def pick(values: Iterable) -> list:
            return list(itertools.compress(values, train))

        label = self.label_fields
        out = Columns(pick(examples), {self.schema.label.name: pick(label[v][-4:] for v, _, _ in labels)})
        for col in self.features:
            if col.kind == "numeric":
                as_float32 = self.caches[col.name]["numeric"][3]  # raw token -> float32 bytes
                out.floats[col.name] = pick(map(as_float32.__getitem__, cols[col.name]))
            elif col.kind == "categorical":
                out.strings[col.name] = pick(cols[col.name])
            else:
                out.multi[col.name] = pick(e[1] for e in encoded[col.name])
        return out

    def _encode(self, labels: list, encoded: dict[str, list], transformed: dict[str, list],
                cols: dict[str, Sequence[bytes]], is_train: np.ndarray) -> list[bytes]:
        """The rows' tf.Examples; the statistics accumulate over the train rows (``is_train``)."""
        train = is_train.tolist()
        fields: list[list[Any]] = [[self.label_fields[v] for v, _, _ in labels]]
        for col in self.features:
            column = encoded[col.name]
            acc = self.raw_accs[col.name]
            if isinstance(acc, NumericAcc):  # the numeric columns
                fields.append(column)
                vals = np.fromiter(itertools.compress(transformed[col.name], train), np.float64)
                miss = np.isnan(vals)
                acc.add(vals[~miss], int(miss.sum()))
            elif col.kind == "categorical":
                fields.append(column)
                acc.counts.update(itertools.compress(cols[col.name], train))
                acc.missing += acc.counts.pop(b"", 0)
            else:
                fields.append([e[0] for e in column])
                per_row = [e[1] for e in itertools.compress(column, train)]
                acc.counts.update(itertools.chain.from_iterable(per_row))
                if per_row:
                    acc.max_values = max(acc.max_values, max(map(len, per_row)))
                    acc.missing += per_row.count(())
        return example_codec.examples_from_fields(fields)

    def _time(self, raw: bytes):
        try:
            return self._number(raw)
        except ValueError:
            return _BAD
