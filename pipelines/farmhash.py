"""FarmHash Fingerprint64 of many byte strings at once, in NumPy (TensorFlow's ``Fingerprint64``).

The columnar copy keys each row by the fingerprint of its serialized tf.Example, as the training
stream does with ``tf.strings.to_hash_bucket_fast``. Computing it here keeps TensorFlow (and its
~500 MB of resident memory) out of the preprocessing workers. This is ``farmhashna::Hash64``, the
function behind ``farmhash::Fingerprint64``, vectorised over rows; tests compare it with TensorFlow.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

_U = np.uint64
K0, K1, K2 = _U(0xC3A5C85C97CB3127), _U(0xB492B66FBE98F273), _U(0x9AE16A3B2F90404F)
_EIGHT = np.arange(8)
_FOUR = np.arange(4)


def _rot(v: np.ndarray, shift: int) -> np.ndarray:
    return (v >> _U(shift)) | (v << _U(64 - shift))


def _shift_mix(v: np.ndarray) -> np.ndarray:
    return v ^ (v >> _U(47))


def _len16(u: np.ndarray, v: np.ndarray, mul: np.ndarray) -> np.ndarray:
    a = (u ^ v) * mul
    a ^= a >> _U(47)
    b = (v ^ a) * mul
    b ^= b >> _U(47)
    return b * mul


class _Rows:
    """Little-endian loads at per-row byte offsets from the rows laid end to end."""

    def __init__(self, data: bytes, starts: np.ndarray, pad: int):
        self.buf = np.frombuffer(data + bytes(pad), np.uint8)  # loads of rows masked out may overrun
        self.starts = starts

    def subset(self, pick: np.ndarray) -> _Rows:
        """The rows where ``pick`` is true (same buffer)."""
        out = _Rows.__new__(_Rows)
        out.buf, out.starts = self.buf, self.starts[pick]
        return out

    def u64(self, off: np.ndarray) -> np.ndarray:
        idx = (self.starts + off)[:, None] + _EIGHT
        return np.ascontiguousarray(self.buf[idx]).view("<u8").ravel().astype(np.uint64)

    def u32(self, off: np.ndarray) -> np.ndarray:
        idx = (self.starts + off)[:, None] + _FOUR
        return np.ascontiguousarray(self.buf[idx]).view("<u4").ravel().astype(np.uint64)

    def byte(self, off: np.ndarray) -> np.ndarray:
        return self.buf[self.starts + off].astype(np.uint64)


def _weak(w: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, a: np.ndarray,
          b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """farmhash's WeakHashLen32WithSeeds of the words w, x, y, z."""
    a = a + w
    b = _rot(b + a + z, 21)
    c = a
    a = a + x + y
    b = b + _rot(a, 44)
    return a + z, b + c


def _weak32(r: _Rows, off: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _weak(r.u64(off), r.u64(off + 8), r.u64(off + 16), r.u64(off + 24), a, b)


def _to16(r: _Rows, n: np.ndarray) -> np.ndarray:
    out = np.full(n.shape, K2, np.uint64)
    zero = np.zeros(n.shape, np.int64)
    n64 = n.astype(np.uint64)
    mul = K2 + n64 * _U(2)
    big = n >= 8
    if big.any():
        s, m, ln = r.subset(big), mul[big], n[big]
        a = s.u64(zero[big]) + K2
        b = s.u64(ln - 8)
        c = _rot(b, 37) * m + a
        d = (_rot(a, 25) + b) * m
        out[big] = _len16(c, d, m)
    mid = (n >= 4) & (n < 8)
    if mid.any():
        s, m, ln = r.subset(mid), mul[mid], n[mid]
        a = s.u32(zero[mid])
        out[mid] = _len16(ln.astype(np.uint64) + (a << _U(3)), s.u32(ln - 4), m)
    low = (n > 0) & (n < 4)
    if low.any():
        s, ln = r.subset(low), n[low]
        a, b, c = s.byte(zero[low]), s.byte(ln >> 1), s.byte(ln - 1)
        y = a + (b << _U(8))
        z = ln.astype(np.uint64) + (c << _U(2))
        out[low] = _shift_mix((y * K2) ^ (z * K0)) * K2
    return out


def _to32(r: _Rows, n: np.ndarray) -> np.ndarray:
    mul = K2 + n.astype(np.uint64) * _U(2)
    a = r.u64(np.zeros_like(n)) * K1
    b = r.u64(np.full_like(n, 8))
    c = r.u64(n - 8) * mul
    d = r.u64(n - 16) * K2
    return _len16(_rot(a + b, 43) + _rot(c, 30) + d, a + _rot(b + K2, 18) + c, mul)


def _to64(r: _Rows, n: np.ndarray) -> np.ndarray:
    mul = K2 + n.astype(np.uint64) * _U(2)
    a = r.u64(np.zeros_like(n)) * K2
    b = r.u64(np.full_like(n, 8))
    c = r.u64(n - 8) * mul
    d = r.u64(n - 16) * K2
    y = _rot(a + b, 43) + _rot(c, 30) + d
    z = _len16(y, a + _rot(b + K2, 18) + c, mul)
    e = r.u64(np.full_like(n, 16)) * mul
    f = r.u64(np.full_like(n, 24))
    g = (y + r.u64(n - 32)) * mul
    h = (z + r.u64(n - 24)) * mul
    return _len16(_rot(e + f, 43) + _rot(g, 30) + h, e + _rot(f + a, 18) + g, mul)


def _long(r: _Rows, n: np.ndarray, rows: list[bytes]) -> np.ndarray:
    # Longest rows first, so the rows still in the 64-byte loop are always a prefix (no masking).
    order = np.argsort(-n, kind="stable")
    out = np.empty(n.shape, np.uint64)
    out[order] = _long_sorted(r.subset(order), n[order], [rows[i] for i in order.tolist()])
    return out


def _long_sorted(r: _Rows, n: np.ndarray, rows: list[bytes]) -> np.ndarray:
    seed = np.full(n.shape, 81, np.uint64)
    blocks = (n - 1) // 64
    # The loop reads 8-byte words at multiples of 8: lay the rows out padded, one row of words each.
    width = int(blocks.max()) * 64
    grid = np.frombuffer(b"".join(row[:width].ljust(width, b"\0") for row in rows), np.uint8)
    words = grid.reshape(len(rows), width).view("<u8")
    x = seed
    y = seed * K1 + _U(113)
    z = _shift_mix(y * K2 + _U(113)) * K2
    v1, v2, w1, w2 = (np.zeros(n.shape, np.uint64) for _ in range(4))
    x = x * K2 + words[:, 0]
    for i in range(int(blocks.max())):
        k = int(np.count_nonzero(blocks > i))  # the rows with a block i: a prefix
        a0, a1, a2, a3, a4, a5, a6, a7 = (words[:k, 8 * i + j] for j in range(8))
        nx = _rot(x[:k] + y[:k] + v1[:k] + a1, 37) * K1
        ny = _rot(y[:k] + v2[:k] + a6, 42) * K1
        nx ^= w2[:k]
        ny += v1[:k] + a5
        nz = _rot(z[:k] + w1[:k], 33) * K1
        nv1, nv2 = _weak(a0, a1, a2, a3, v2[:k] * K1, nx + w1[:k])
        nw1, nw2 = _weak(a4, a5, a6, a7, nz + w2[:k], ny + a2)
        x[:k], y[:k], z[:k] = nz, ny, nx  # std::swap(z, x)
        v1[:k], v2[:k], w1[:k], w2[:k] = nv1, nv2, nw1, nw2
    mul = K1 + ((z & _U(0xFF)) << _U(1))
    last = n - 64
    w1 = w1 + ((n - 1) & 63).astype(np.uint64)
    v1 = v1 + w1
    w1 = w1 + v1
    x = _rot(x + y + v1 + r.u64(last + 8), 37) * mul
    y = _rot(y + v2 + r.u64(last + 48), 42) * mul
    x ^= w2 * _U(9)
    y += v1 * _U(9) + r.u64(last + 40)
    z = _rot(z + w1, 33) * mul
    v1, v2 = _weak32(r, last, v2 * mul, x + w1)
    w1, w2 = _weak32(r, last + 32, z + w2, y + r.u64(last + 16))
    x, z = z, x
    return _len16(_len16(v1, w1, mul) + _shift_mix(y) * K0 + z, _len16(v2, w2, mul) + x, mul)


def fingerprint64(rows: Sequence[bytes]) -> np.ndarray:
    """uint64 FarmHash Fingerprint64 of each row (``tf.strings.to_hash_bucket_fast`` before the modulo)."""
    n = np.fromiter(map(len, rows), np.int64, len(rows))
    starts = np.zeros(len(rows), np.int64)
    np.cumsum(n[:-1], out=starts[1:])
    r = _Rows(b"".join(rows), starts, int(n.max(initial=0)) + 72)
    out = np.empty(len(rows), np.uint64)
    for pick, fn in ((n <= 16, _to16), ((n > 16) & (n <= 32), _to32), ((n > 32) & (n <= 64), _to64)):
        if pick.any():
            out[pick] = fn(r.subset(pick), n[pick])
    pick = n > 64
    if pick.any():
        out[pick] = _long(r.subset(pick), n[pick], list(itertools.compress(rows, pick)))
    return out


def hash_buckets(rows: Sequence[bytes], buckets: int) -> np.ndarray:
    """int64 ``Fingerprint64(row) % buckets`` of each row, as ``tf.strings.to_hash_bucket_fast``."""
    return (fingerprint64(rows) % np.uint64(buckets)).astype(np.int64)
