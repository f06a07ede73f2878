"""Mergeable per-feature statistics: numeric moments and categorical value counts.

Each chunk fills one accumulator per feature from its training rows; Beam merges them per feature
(``CombinePerKey``) and the spec writer turns the result into vocabularies and normalisation stats.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass
class NumericAcc:
    """Count, mean and M2 (Chan et al. parallel variance), missing count, min, max."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    missing: int = 0
    min: float = math.inf
    max: float = -math.inf

    def add(self, values: np.ndarray, missing: int) -> None:
        """Add transformed, non-missing values and a number of missing ones."""
        self.missing += int(missing)
        n = int(values.size)
        if n == 0:
            return
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        self.merge(NumericAcc(n, mean, m2, 0, float(values.min()), float(values.max())))

    def merge(self, other: NumericAcc) -> NumericAcc:
        self.missing += other.missing
        if other.count:
            n = self.count + other.count
            delta = other.mean - self.mean
            self.mean += delta * other.count / n
            self.m2 += other.m2 + delta * delta * self.count * other.count / n
            self.count = n
            self.min = min(self.min, other.min)
            self.max = max(self.max, other.max)
        return self

    @property
    def variance(self) -> float:
        return self.m2 / self.count if self.count else 1.0


SKETCH_SIZE = 4096  # k of the k-minimum-values distinct-count sketch (~1.6% relative error)


def _hashes(values) -> np.ndarray:
    """64-bit hashes of byte strings (blake2b), as uint64."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(v, digest_size=8).digest(), "little") for v in values),
        np.uint64,
    )


@dataclass
class CategoricalAcc:
    """Value counts (missing excluded), missing count and the largest number of values in a row.

    Once a merged accumulator holds more distinct values than the hashing threshold, the feature
    will be hashed and needs no vocabulary: the counts are dropped (bounded memory) and only a
    k-minimum-values sketch is kept to estimate the cardinality.
    """

    counts: Counter = field(default_factory=Counter)
    missing: int = 0
    max_values: int = 0
    sketch: np.ndarray | None = None  # set once overflowed: smallest SKETCH_SIZE distinct hashes

    @property
    def overflowed(self) -> bool:
        return self.sketch is not None

    @property
    def cardinality(self) -> int:
        """Distinct values: exact, or estimated from the sketch after an overflow."""
        if self.sketch is None:
            return len(self.counts)
        if len(self.sketch) < SKETCH_SIZE:
            return len(self.sketch)
        return int(round((SKETCH_SIZE - 1) / (float(self.sketch[-1]) / 2.0**64)))

    def _absorb(self, hashes: np.ndarray) -> None:
        merged = np.union1d(self.sketch, hashes) if self.sketch is not None else np.unique(hashes)
        self.sketch = merged[:SKETCH_SIZE]

    def merge(self, other: CategoricalAcc, limit: int = 0) -> CategoricalAcc:
        self.missing += other.missing
        self.max_values = max(self.max_values, other.max_values)
        if other.sketch is not None:
            self._absorb(other.sketch)
        if self.sketch is not None:
            if other.counts:
                self._absorb(_hashes(other.counts))
            self.counts = Counter()
            return self
        self.counts.update(other.counts)
        if limit and len(self.counts) > limit:
            self._absorb(_hashes(self.counts))
            self.counts = Counter()
        return self


def merge_accs(accs, limit: int = 0):
    """Merge accumulators of one feature (the CombinePerKey function); ``limit`` = hash threshold."""
    out = None
    for a in accs:
        if out is None:
            out = type(a)()
        if isinstance(out, CategoricalAcc):
            out.merge(a, limit)
        else:
            out.merge(a)
    return out


def build_vocabulary(counts: Counter, min_frequency: int, top_k: int) -> list[tuple[bytes, int]]:
    """Values with count >= min_frequency, most frequent first, ties by value; at most top_k."""
    kept = [(v, c) for v, c in counts.items() if c >= min_frequency]
    kept.sort(key=lambda vc: (-vc[1], vc[0]))
    return kept[:top_k] if top_k > 0 else kept
