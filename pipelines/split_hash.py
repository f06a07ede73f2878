"""The hash split: a row goes to eval by a hash of its key, so the same key is always on the same side."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np


def _fmix32(h: np.ndarray) -> np.ndarray:
    """murmur3 finaliser: spreads crc32 bits so a threshold on the value is a fair coin."""
    h = h.astype(np.uint64)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(16)
    return h


def split_is_eval(keys: Sequence[bytes], eval_fraction: float, salt: str) -> np.ndarray:
    """Deterministic eval membership from a hash of each key (same key -> same side)."""
    if eval_fraction <= 0.0 or not keys:
        return np.zeros(len(keys), dtype=bool)
    seed = zlib.crc32(salt.encode("utf-8"))
    h = _fmix32(np.fromiter((zlib.crc32(k, seed) for k in keys), np.uint64, len(keys)))
    return h < np.uint64(int(eval_fraction * 2**32))
