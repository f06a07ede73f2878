"""The processor's batch work in NumPy over the line bytes, for a batch with no row to dead-letter.

A batch's fields are located from the positions of its delimiters, each used column's values become
fixed-width codes (the bytes as one uint64 for values up to 8 bytes), every distinct raw token of a
label or numeric column is parsed once (the processor's caches), and the tf.Examples are assembled by
one gather from the line bytes and small tables of encoded pieces. The bytes are those of
:class:`pipelines.processor.BatchProcessor`'s general path, which any batch this path cannot take
(a bad row, a NUL byte, a field over ``WIDE`` bytes, ...) goes through instead; the tests compare both.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipelines.columnar_chunk import Block, Columns
from pipelines.schema import Column
from pipelines.split_hash import split_is_eval

WIDE = 64  # a used field longer than this sends the batch to the general path
PAD = 256  # a padding byte in the uint16 blocks the rows are assembled from (no byte value)
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], np.uint64)  # low k bytes
_PENDING_MAX = 1 << 18  # a column's pending (code, count) pairs before they are merged


def tokens(codes: np.ndarray) -> list[bytes]:
    """The raw values of codes (no value holds a NUL byte, so padding NULs are not part of one)."""
    if codes.dtype == np.uint64:
        return np.ascontiguousarray(codes).view("S8").tolist()
    return codes.tolist()


def _padded(entries: Sequence[bytes], inv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's entry (``entries[inv]``) as a block of rows padded with ``PAD`` to one width, and its
    length."""
    sizes = np.fromiter(map(len, entries), np.int64, len(entries))
    w = max(int(sizes.max(initial=0)), 1)
    table = np.frombuffer(b"".join(e.ljust(w, b"\0") for e in entries), np.uint8).reshape(len(entries), w)
    table = np.where(np.arange(w) < sizes[:, None], table.astype(np.uint16), np.uint16(PAD))
    return table[inv], sizes[inv]


def _cumstart(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


class FastBatch:
    """Processes clean batches for a :class:`~pipelines.processor.BatchProcessor` (see the module doc)."""

    def __init__(self, proc: Any) -> None:
        self.proc = proc
        self.delim = proc.delim[0]
        split = proc.schema.split
        self.key_pos = proc.pos[split.key[0]] if split.key else -1
        self.used = sorted({proc.label_pos, *(proc.pos[c.name] for c in proc.features),
                            *([self.key_pos] if self.key_pos >= 0 else [])})
        self.categorical = [proc.pos[c.name] for c in proc.features if c.kind == "categorical"]
        self.pending: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.prefix: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for col in proc.features:
            if col.kind == "categorical":  # prefix of a value of length k: table[start[k]:start[k] + size[k]]
                self.prefix[col.name] = _padded(proc.prefixes(col)[: WIDE + 1], np.arange(WIDE + 1))

    @staticmethod
    def applies(proc: Any) -> bool:
        """Whether the schema's batches can take this path at all."""
        s = proc.schema
        return (len(proc.delim) == 1 and proc.delim not in b"\n\r\0" and proc.ncols > 1
                and s.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
                and all(c.kind in ("numeric", "categorical") for c in proc.features)
                and s.split.method == "hash" and len(s.split.key) <= 1)

    # -- counts -----------------------------------------------------------------------------------
    def flush_counts(self) -> None:
        """Add the pending value counts to the processor's accumulators."""
        for name, parts in self.pending.items():
            if parts:
                codes, counts = self._merge(parts)
                new = dict(zip(tokens(codes), counts.tolist(), strict=True))
                self.proc.raw_accs[name].counts.update(new)
        self.pending.clear()

    @staticmethod
    def _merge(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        if len(parts) == 1:
            return parts[0]
        codes, inv = np.unique(np.concatenate([p[0] for p in parts]), return_inverse=True)
        counts = np.zeros(codes.size, np.int64)
        np.add.at(counts, inv, np.concatenate([p[1] for p in parts]))
        return codes, counts

    def _count(self, col: Column, codes: np.ndarray) -> None:
        uniq, counts = np.unique(codes, return_counts=True)
        acc = self.proc.raw_accs[col.name]
        if uniq.size and not uniq[0]:  # the empty value (all-zero code) sorts first: missing
            acc.missing += int(counts[0])
            uniq, counts = uniq[1:], counts[1:]
        if codes.dtype != np.uint64:  # a wide column in this batch: counted now
            acc.counts.update(dict(zip(tokens(uniq), counts.tolist(), strict=True)))
            return
        parts = self.pending.setdefault(col.name, [])
        parts.append((uniq, counts.astype(np.int64)))
        if sum(p[0].size for p in parts) > _PENDING_MAX:
            parts[:] = [self._merge(parts)]

    # -- the batch --------------------------------------------------------------------------------
    def process(self, lines: list[bytes], joined: bytes) -> Any:
        """The batch's BatchResult, or None when the general path must take it."""
        from pipelines.processor import BatchResult

        proc, n, ncols = self.proc, len(lines), self.proc.ncols
        if not n or b"\0" in joined:
            return None
        buf = np.frombuffer(joined + b"\n" + bytes(WIDE + 8), np.uint8)
        seps = np.flatnonzero(buf[: len(joined) + 1] == self.delim)
        if seps.size != n * (ncols - 1):
            return None
        newlines = np.flatnonzero(buf[: len(joined) + 1] == 10)
        inner = seps.reshape(n, ncols - 1)
        first = np.zeros(n, np.int64)
        first[1:] = newlines[:-1] + 1
        if n and ((inner[:, 0] < first).any() or (inner[:, -1] > newlines).any()):
            return None  # some row has too many fields and another too few
        ends = np.concatenate([inner, newlines[:, None]], axis=1)
        starts = np.concatenate([first[:, None], inner + 1], axis=1)
        lens = ends - starts
        found_codes = self._codes(buf, starts, lens)
        if found_codes is None:
            return None
        codes, raw = found_codes
        padded = {c: np.where(raw[c] == 0, np.uint16(PAD), raw[c].astype(np.uint16))  # no NUL byte in data
                  for c in self.categorical}
        labels = self._lookup(codes[proc.label_pos], proc.label_cache, proc._label)
        if labels is None:
            return None
        label_u, label_inv = labels
        label_v = [v for v, _, _ in label_u]
        label_ent = [proc.label_fields[v] for v in label_v]

        # Each row is its pieces in order: head, label entry, then per feature its entry (numeric) or
        # its field prefix and value (categorical). A piece is a block of n rows padded to one width
        # and each row's length in it; the rows' bytes are the blocks side by side with the padding cut.
        blocks: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros((n, 0), np.uint16), np.zeros(n, np.int64))]
        blocks.append(_padded(label_ent, label_inv))
        numeric: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for col in proc.features:
            c = proc.pos[col.name]
            if col.kind == "numeric":
                found = self._numeric(col, codes[c])
                if found is None:
                    return None
                ents, t, f32, inv = found
                numeric[col.name] = (t, f32, inv)
                blocks.append(_padded(ents, inv))
            else:
                table, sizes = self.prefix[col.name]
                blocks += [(table[lens[:, c]], sizes[lens[:, c]]), (padded[c], lens[:, c])]
        body = np.sum([ln for _, ln in blocks[1:]], axis=0)
        if int(body.max()) >= 1 << 21:
            return None
        heads = np.zeros((n, 4), np.uint16)  # b"\n" + varint(body length)
        heads[:, 0] = 0x0A
        heads[:, 1] = (body & 0x7F) | np.where(body >= 128, 0x80, 0)
        heads[:, 2] = ((body >> 7) & 0x7F) | np.where(body >= 1 << 14, 0x80, 0)
        heads[:, 3] = body >> 14
        head_len = 2 + (body >= 128).astype(np.int64) + (body >= 1 << 14)
        heads[np.arange(4) >= head_len[:, None]] = PAD
        blocks[0] = (heads, head_len)
        grid = np.concatenate([block for block, _ in blocks], axis=1)
        data = grid[grid != PAD].astype(np.uint8).tobytes()
        bounds = _cumstart(head_len + body).tolist()
        examples = [data[a:b] for a, b in itertools.pairwise(bounds)]

        split = proc.schema.split
        keys = lines if self.key_pos < 0 else tokens(codes[self.key_pos])
        is_eval = split_is_eval(keys, split.eval_fraction, split.salt)
        train = ~is_eval
        for col in proc.features:
            if col.kind == "numeric":
                t, _, inv = numeric[col.name]
                vals = t[inv[train]]
                miss = np.isnan(vals)
                proc.raw_accs[col.name].add(vals[~miss], int(miss.sum()))
            else:
                self._count(col, codes[proc.pos[col.name]][train])
        columns = None
        if proc.columnar:
            label32 = np.frombuffer(b"".join(e[-4:] for e in label_ent), "<u4")
            columns = Columns(list(itertools.compress(examples, train.tolist())),
                              {proc.schema.label.name: label32[label_inv[train]]})
            for col in proc.features:
                c = proc.pos[col.name]
                if col.kind == "numeric":
                    _, f32, inv = numeric[col.name]
                    columns.floats[col.name] = f32[inv[train]]
                else:
                    columns.strings[col.name] = Block(raw[c][train], lens[train, c])
        return BatchResult(examples, is_eval, [], columns=columns)

    def _codes(self, buf: np.ndarray, starts: np.ndarray, lens: np.ndarray):
        """Each used column's values as codes, uint64 (values up to 8 bytes) or fixed-width bytes, and
        as rows of bytes (n, width) padded with NULs; None if a value is wider than ``WIDE``."""
        widths = lens[:, self.used].max(axis=0)
        if int(widths.max()) > WIDE:
            return None
        narrow = [c for c, w in zip(self.used, widths.tolist(), strict=True) if w <= 8]
        codes: dict[int, np.ndarray] = {}
        raw: dict[int, np.ndarray] = {}
        if narrow:  # 8 bytes from each field's start (rows of a strided view), cut to its length
            windows = np.lib.stride_tricks.as_strided(buf, (buf.size - 7, 8), (1, 1))
            packed = windows[starts[:, narrow].ravel()].view(np.uint64).reshape(len(starts), len(narrow))
            packed &= _MASKS[lens[:, narrow]]
            as_bytes = packed.view(np.uint8).reshape(len(starts), len(narrow), 8)
            for j, c in enumerate(narrow):
                codes[c], raw[c] = packed[:, j], as_bytes[:, j]
        for c, w in zip(self.used, widths.tolist(), strict=True):
            if w > 8:
                ar = np.arange(w)
                grid = np.where(ar < lens[:, c, None], buf[starts[:, c, None] + ar], 0).astype(np.uint8)
                codes[c], raw[c] = np.ascontiguousarray(grid).view(f"S{w}")[:, 0], grid
        return codes, raw

    def _lookup(self, codes: np.ndarray, cache: dict, make) -> tuple[list, np.ndarray] | None:
        """(cache entry of each distinct raw token, each row's index into them); None if one is bad."""
        from pipelines.processor import _is_bad

        uniq, inv = np.unique(codes, return_inverse=True)
        raws = tokens(uniq)
        self.proc.fill_cache(cache, set(raws), make)
        found = [cache[r] for r in raws]
        if any(map(_is_bad, found)):
            return None
        return found, inv.ravel()

    def _numeric(self, col: Column, codes: np.ndarray):
        """(encoded entries, transformed values, float32 bits) of the distinct tokens, each row's index."""
        uniq, inv = np.unique(codes, return_inverse=True)
        raws = tokens(uniq)
        fcache, tcache, vcache, bad = self.proc.numeric_tokens(col, set(raws))
        if bad:
            return None
        ents = [fcache[r] for r in raws]
        t = np.fromiter(map(tcache.__getitem__, raws), np.float64, len(raws))
        f32 = np.frombuffer(b"".join(map(vcache.__getitem__, raws)), "<u4")
        return ents, t, f32, inv.ravel()
