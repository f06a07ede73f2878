"""Mergeable per-feature statistics: numeric moments and categorical value counts.

Each chunk fills one accumulator per feature from its training rows; Beam merges them per feature
(``CombinePerKey``) and the spec writer turns the result into vocabularies and normalisation stats.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np


@dataclass
class NumericAcc:
    """Count, mean and variance of a feature's non-missing values, missing count, min, max.

    Merged exactly, so the result does not depend on the order Beam merges in (which chunk reaches
    which worker, which bundle merges first): each batch's mean and M2 are computed in float64 from
    its values in row order, and batches combine as exact rationals (Chan et al.'s parallel formulas
    with no rounding: ``total`` = sum of n·mean, ``squares`` = sum of M2 + n·mean²). Float merges in
    arrival order made the spec's mean and variance differ in their last bits between runs on two
    SDK workers, and with them the model's normalisation.
    """

    count: int = 0
    total: Fraction = Fraction(0)
    squares: Fraction = Fraction(0)
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
        exact = Fraction(mean)
        self.merge(NumericAcc(n, n * exact, Fraction(m2) + n * exact * exact, 0, float(values.min()),
                              float(values.max())))

    def merge(self, other: NumericAcc) -> NumericAcc:
        self.missing += other.missing
        if other.count:
            self.count += other.count
            self.total += other.total
            self.squares += other.squares
            self.min = min(self.min, other.min)
            self.max = max(self.max, other.max)
        return self

    @property
    def mean(self) -> float:
        return float(self.total / self.count) if self.count else 0.0

    @property
    def variance(self) -> float:
        if not self.count:
            return 1.0
        return float((self.squares - self.total * self.total / self.count) / self.count)


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
