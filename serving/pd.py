"""Absolute and relative prediction difference (Shamir & Lin), their distribution, and K-replica pairs.

For predictions p1, p2 of two models on the same N examples:
    absolute PD = mean |p1 - p2|,   relative PD = mean |p1 - p2| / ((p1 + p2) / 2).
An example where both predictions are 0 contributes 0 to relative PD (identical predictions), so the
metric is defined for any non-negative predictions; its per-example term lies in [0, 2].
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

# K replicas' predictions on the same examples: K arrays, or one K x N array.
Replicas = Sequence[ArrayLike] | np.ndarray

DEFAULT_PERCENTILES = (50.0, 90.0, 99.0)
DEFAULT_THRESHOLD = 0.1  # share of examples whose relative difference exceeds 10%


def _pair(p1: ArrayLike, p2: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(p1, dtype=np.float64).reshape(-1)
    b = np.asarray(p2, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"predictions must have the same number of examples, got {a.size} and {b.size}")
    if a.size == 0:
        raise ValueError("PD of an empty set of examples is undefined: got 0 predictions")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("predictions contain NaN or inf")
    if np.any(a < 0) or np.any(b < 0):
        raise ValueError("PD is defined for non-negative predictions (probabilities, rates)")
    return a, b


def relative_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The formula, elementwise on float arrays of one shape (unchecked; the bootstrap applies it to
    every replica pair at once): |a - b| / ((a + b) / 2), 0 where both are 0."""
    diff = np.abs(a - b)
    mean = (a + b) / 2.0
    out: np.ndarray = np.zeros_like(diff)
    np.divide(diff, mean, out=out, where=mean > 0)
    return out


def per_example_relative_difference(p1: ArrayLike, p2: ArrayLike) -> np.ndarray:
    """|p1 - p2| / ((p1 + p2) / 2) per example; 0 where both predictions are 0."""
    return relative_difference(*_pair(p1, p2))


def absolute_pd(p1: ArrayLike, p2: ArrayLike) -> float:
    """Mean |p1 - p2| over examples."""
    a, b = _pair(p1, p2)
    return float(np.mean(np.abs(a - b)))


def relative_pd(p1: ArrayLike, p2: ArrayLike) -> float:
    """Mean |p1 - p2| / ((p1 + p2) / 2) over examples: the headline reproducibility metric."""
    return float(np.mean(per_example_relative_difference(p1, p2)))


@dataclasses.dataclass(frozen=True)
class PDDistribution:
    """Distribution of per-example relative differences between two models."""

    relative_pd: float
    absolute_pd: float
    percentiles: dict[str, float]  # "p50" -> relative difference at that percentile
    share_above: float  # share of examples whose relative difference exceeds `threshold`
    threshold: float
    count: int


def pd_distribution(
    p1: ArrayLike,
    p2: ArrayLike,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    threshold: float = DEFAULT_THRESHOLD,
) -> PDDistribution:
    """Relative and absolute PD with percentiles of the per-example relative difference."""
    rel = per_example_relative_difference(p1, p2)
    a, b = _pair(p1, p2)
    q = np.percentile(rel, list(percentiles)) if percentiles else []
    return PDDistribution(
        relative_pd=float(rel.mean()),
        absolute_pd=float(np.mean(np.abs(a - b))),
        percentiles={_pname(p): float(v) for p, v in zip(percentiles, q, strict=True)},
        share_above=float(np.mean(rel > threshold)),
        threshold=float(threshold),
        count=int(rel.size),
    )


def _pname(p: float) -> str:
    return f"p{p:g}".replace(".", "_")


@dataclasses.dataclass(frozen=True)
class PairStats:
    """Mean and spread of one metric over the K(K-1)/2 replica pairs."""

    mean: float
    std: float
    min: float
    max: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> PairStats:
        v = np.asarray(values, dtype=np.float64)
        return cls(float(v.mean()), float(v.std()), float(v.min()), float(v.max()), tuple(map(float, v)))


@dataclasses.dataclass(frozen=True)
class PDSummary:
    """PD over all pairs of K replicas: per metric mean/spread, and each pair's distribution."""

    num_replicas: int
    pairs: tuple[tuple[int, int], ...]
    relative: PairStats
    absolute: PairStats
    share_above: PairStats
    percentiles: dict[str, PairStats]
    per_pair: tuple[PDDistribution, ...]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def pairwise_pd(
    predictions: Replicas, percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    threshold: float = DEFAULT_THRESHOLD,
) -> PDSummary:
    """PD between every pair of K >= 2 replicas' predictions on the same examples."""
    preds = [np.asarray(p, dtype=np.float64).reshape(-1) for p in predictions]
    k = len(preds)
    if k < 2:
        raise ValueError(f"PD needs at least 2 replicas to compare, got {k}")
    pairs = tuple(itertools.combinations(range(k), 2))
    dists = tuple(pd_distribution(preds[i], preds[j], percentiles, threshold) for i, j in pairs)
    return PDSummary(
        num_replicas=k,
        pairs=pairs,
        relative=PairStats.of([d.relative_pd for d in dists]),
        absolute=PairStats.of([d.absolute_pd for d in dists]),
        share_above=PairStats.of([d.share_above for d in dists]),
        percentiles={
            name: PairStats.of([d.percentiles[name] for d in dists]) for name in dists[0].percentiles
        },
        per_pair=dists,
    )
