"""Columns of rows for the columnar copy, and one chunk record encoded from them by hand.

The processor hands its already-parsed values to the writer (no second parse of each tf.Example), and
a chunk record is wire-encoded here without TensorFlow or protobuf: the bytes are those of
``tf.train.Example.SerializeToString(deterministic=True)`` (map entries sorted by key, repeated
numbers packed), which the tests check against protobuf.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines import farmhash
from pipelines.example_codec import _ld

NAN32 = struct.pack("<f", float("nan"))  # a missing numeric value, as parsing gives it (float32 NaN)


@dataclass
class Block:
    """A column of short byte strings (under 128 bytes) as NumPy rows: value i is
    ``grid[i, :lens[i]]``. The fast batch path hands its columns over so, not one bytes object each."""

    grid: np.ndarray  # (rows, width) uint8
    lens: np.ndarray  # (rows,) int64

    def __len__(self) -> int:
        return len(self.lens)

    def tolist(self) -> list[bytes]:
        data = self.grid.tobytes()
        w = self.grid.shape[1]
        return [data[i * w : i * w + k] for i, k in enumerate(self.lens.tolist())]

    @staticmethod
    def concat(a: Block, b: Block) -> Block:
        w = max(a.grid.shape[1], b.grid.shape[1])
        grid = np.zeros((len(a) + len(b), w), np.uint8)
        grid[: len(a), : a.grid.shape[1]] = a.grid
        grid[len(a) :, : b.grid.shape[1]] = b.grid
        return Block(grid, np.concatenate([a.lens, b.lens]))


Floats = list[bytes] | np.ndarray  # 4 bytes a row, or a uint32 array of the float32 bits
Strings = list[bytes] | Block


def _as_bits(values: Floats) -> np.ndarray:
    return values if isinstance(values, np.ndarray) else np.frombuffer(b"".join(values), "<u4")


def _join(a: Any, b: Any) -> Any:
    """Rows of ``a`` then of ``b`` (lists, uint32 arrays or Blocks; a mix becomes an array or a list)."""
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    if isinstance(a, Block) and isinstance(b, Block):
        return Block.concat(a, b)
    if isinstance(a, Block) or isinstance(b, Block):
        return (a.tolist() if isinstance(a, Block) else a) + (b.tolist() if isinstance(b, Block) else b)
    return np.concatenate([_as_bits(a), _as_bits(b)])


def _rows(values: Any, keep: Sequence[bool]) -> Any:
    if isinstance(values, list):
        return list(itertools.compress(values, keep))
    pick = np.asarray(keep, bool)
    return Block(values.grid[pick], values.lens[pick]) if isinstance(values, Block) else values[pick]


def _head(values: Any, n: int) -> Any:
    return Block(values.grid[:n], values.lens[:n]) if isinstance(values, Block) else values[:n]


def _tail(values: Any, n: int) -> Any:
    return Block(values.grid[n:], values.lens[n:]) if isinstance(values, Block) else values[n:]


@dataclass
class Columns:
    """Rows in order: their serialized tf.Examples and, per column, each row's value.

    ``floats``: the label and the numeric features, 4 little-endian float32 bytes a row (or a uint32
    array of them); ``strings``: the categorical features ("" missing; a list or a :class:`Block`);
    ``multi``: a multi-valued categorical's values.
    """

    records: list[bytes] = field(default_factory=list)
    floats: dict[str, Floats] = field(default_factory=dict)
    strings: dict[str, Strings] = field(default_factory=dict)
    multi: dict[str, list[tuple[bytes, ...]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def select(self, keep: Sequence[bool]) -> Columns:
        """The rows where ``keep`` is true."""
        return Columns(_rows(self.records, keep), {k: _rows(v, keep) for k, v in self.floats.items()},
                       {k: _rows(v, keep) for k, v in self.strings.items()},
                       {k: _rows(v, keep) for k, v in self.multi.items()})

    def extend(self, other: Columns) -> None:
        self.records.extend(other.records)
        groups: list[tuple[dict[str, Any], dict[str, Any]]] = [
            (self.floats, other.floats), (self.strings, other.strings), (self.multi, other.multi)]
        for group, more in groups:
            for k, v in more.items():
                group[k] = _join(group[k], v) if k in group else (list(v) if isinstance(v, list) else v)

    def take(self, n: int) -> Columns:
        """Remove and return the first ``n`` rows."""
        head = Columns(self.records[:n], {k: _head(v, n) for k, v in self.floats.items()},
                       {k: _head(v, n) for k, v in self.strings.items()},
                       {k: v[:n] for k, v in self.multi.items()})
        del self.records[:n]
        groups: list[dict[str, Any]] = [self.floats, self.strings, self.multi]
        for group in groups:
            for k, v in group.items():
                group[k] = _tail(v, n)
        return head


def packed_varints(values: np.ndarray) -> bytes:
    """Protobuf packed varints of int64 values (negative ones take 10 bytes, as protobuf writes them)."""
    v = np.asarray(values).astype(np.int64).view(np.uint64)
    shifts = np.arange(10, dtype=np.uint64) * np.uint64(7)
    groups = (v[:, None] >> shifts) & np.uint64(0x7F)
    size = np.maximum(1, np.count_nonzero(v[:, None] >> shifts, axis=1))
    more = np.arange(10) < (size - 1)[:, None]
    out = (groups | (more.astype(np.uint64) << np.uint64(7))).astype(np.uint8)
    return out[np.arange(10) < size[:, None]].tobytes()


def _bytes_lists(columns: Sequence[Sequence[bytes]]) -> list[bytes]:
    """Each column's ``bytes_list`` Feature, all columns encoded at once (a few NumPy calls, not
    one bytes object per value): each value is its tag 0x0A, its length, its bytes."""
    flat = list(itertools.chain.from_iterable(columns))
    lens = np.fromiter(map(len, flat), np.int64, len(flat))
    if lens.size and int(lens.max()) >= 128:  # a value's length takes two varint bytes or more
        return [_ld(0x0A, b"".join(_ld(0x0A, v) for v in col)) for col in columns]
    ends = np.cumsum(lens + 2)
    starts = ends - (lens + 2)
    out = np.empty(int(ends[-1]) if lens.size else 0, np.uint8)
    is_data = np.ones(out.size, bool)
    is_data[starts] = is_data[starts + 1] = False
    out[starts] = 0x0A
    out[starts + 1] = lens
    out[is_data] = np.frombuffer(b"".join(flat), np.uint8)
    data = out.tobytes()
    cuts = np.concatenate([[0], ends])[np.cumsum([0, *map(len, columns)])].tolist()
    return [_ld(0x0A, data[a:b]) for a, b in itertools.pairwise(cuts)]


def _block_bytes_list(block: Block) -> bytes:
    """A Block's ``bytes_list`` Feature: each value its tag 0x0A, its one-byte length, its bytes."""
    n, w = block.grid.shape
    if w >= 128:  # a longer value's length is a two-byte varint: the general encoding takes it
        return _bytes_lists([block.tolist()])[0]
    framed = np.empty((n, w + 2), np.uint8)
    framed[:, 0] = 0x0A
    framed[:, 1] = block.lens
    framed[:, 2:] = block.grid
    keep = np.arange(w + 2) < (block.lens + 2)[:, None]
    return _ld(0x0A, np.compress(keep.ravel(), framed.ravel()).tobytes())


def _float_list(pieces: Floats) -> bytes:
    packed = pieces.astype("<u4").tobytes() if isinstance(pieces, np.ndarray) else b"".join(pieces)
    return _ld(0x12, _ld(0x0A, packed) if packed else b"")


def _int64_list(values: np.ndarray) -> bytes:
    packed = packed_varints(values) if len(values) else b""
    return _ld(0x1A, _ld(0x0A, packed) if packed else b"")


def _upb_order(entry: tuple[bytes, bytes]) -> bytes:
    """protobuf's deterministic map order: bytewise, and of two keys one a prefix of the other the
    longer first ("C10" before "C1"); 0xFF never occurs in UTF-8."""
    return entry[0] + b"\xff"


def encode_chunk(cols: Columns, rows_key: str, id_key: str, holdout_key: str, id_buckets: int,
                 holdout_buckets: int, row_lengths: str) -> bytes:
    """One serialized chunk record (the layout of :mod:`pipelines.columnar`) of all rows of ``cols``."""
    fp = farmhash.fingerprint64(cols.records)
    features: dict[str, bytes] = {
        rows_key: _int64_list(np.asarray([len(cols)])),
        id_key: _int64_list((fp % np.uint64(id_buckets)).astype(np.int64)),
        holdout_key: _int64_list((fp % np.uint64(holdout_buckets)).astype(np.int64)),
    }
    for name, pieces in cols.floats.items():
        features[name] = _float_list(pieces)
    lists = {k: v for k, v in cols.strings.items() if isinstance(v, list)}
    for name, block in cols.strings.items():
        if isinstance(block, Block):
            features[name] = _block_bytes_list(block)
    names = [*lists, *cols.multi]
    values = [*lists.values(), *(list(itertools.chain.from_iterable(r)) for r in cols.multi.values())]
    features.update(zip(names, _bytes_lists(values), strict=True))
    for name, per_row in cols.multi.items():
        features[name + row_lengths] = _int64_list(np.fromiter(map(len, per_row), np.int64, len(per_row)))
    entries = [(k.encode("utf-8"), v) for k, v in features.items()]
    entries.sort(key=_upb_order)
    body = b"".join(_ld(0x0A, _ld(0x0A, k) + _ld(0x12, v)) for k, v in entries)
    return _ld(0x0A, body)
