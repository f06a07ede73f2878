"""Bootstrap confidence intervals of update churn: how much version v+1 of a model differs from version v.

Each variant has K chains (v1 → v2 → ...), and churn is measured between the two versions of one chain on
the same eval examples, so the pairs are given: chain c's ``before`` and ``after``. Each draw resamples the
examples (one draw shared by every variant: comparisons with the baseline are paired) and each variant's
chains (independently per variant), as :mod:`recsys.repro.stats` does for replica PD::

    churn_b = sum_c m_c * mean_n(w_b * d_c) / K       (d_c: chain c's per-example difference)

Three per-example differences: relative |p - p'| / ((p + p') / 2) (relative PD), |p - p'| (absolute PD)
and a decision flip at a threshold (TFMA's flip rate; serving/churn.py's definition: prediction > t).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from recsys.repro.stats import (
    BASELINE,
    Interval,
    _example_multiplicities,
    _interval,
    checked_baseline,
    verdict,
)
from serving.pd import relative_difference

CHURN_METHOD = (
    "Two-level bootstrap ({draws} draws, seed {seed}) over eval examples (one draw shared by every variant, "
    "so ratios to the baseline are paired) and over each variant's K chains (resampled with replacement). "
    "Churn of a chain: relative PD, absolute PD and flip rate (prediction > {threshold:g}) between its two "
    "versions on the same examples; churn of a variant: the mean over its chains. {pct:g}% percentile "
    "intervals; the ratio to the baseline is taken draw by draw."
)
_CHUNK = 50


@dataclasses.dataclass(frozen=True)
class ChurnStats:
    """One variant's churn for one update, with intervals and its ratio to the baseline's churn."""

    variant: str
    chains: int
    relative_pd: Interval
    absolute_pd: Interval
    flip_rate: Interval
    ratio: Interval | None  # relative churn / the baseline's; None when the baseline's churn is 0
    verdict: str

    def as_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "chains": self.chains, "relative_pd": self.relative_pd.as_dict(),
                "absolute_pd": self.absolute_pd.as_dict(), "flip_rate": self.flip_rate.as_dict(),
                "ratio": self.ratio.as_dict() if self.ratio else None, "verdict": self.verdict}


def per_example(before: np.ndarray, after: np.ndarray, threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Per chain and example (K x N): the relative and absolute difference and the decision flip."""
    a = np.asarray(before, dtype=np.float64)
    b = np.asarray(after, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] == 0:
        raise ValueError(f"churn needs two K x N prediction arrays of one shape, got {a.shape} and {b.shape}")
    return {"rel": relative_difference(a, b), "abs": np.abs(a - b),
            "flip": ((a > threshold) != (b > threshold)).astype(np.float64)}


def bootstrap_churn(pairs: Mapping[str, tuple[np.ndarray, np.ndarray]], baseline: str | None = None,
                    draws: int = 1000, seed: int = 0, confidence: float = 0.95,
                    threshold: float = 0.5) -> tuple[ChurnStats, ...]:
    """Churn statistics per variant from each variant's (before, after) predictions, K x N each."""
    names = list(pairs)
    baseline = checked_baseline(names, baseline, draws)
    diffs = {v: per_example(*pairs[v], threshold=threshold) for v in names}
    n = {d["rel"].shape[1] for d in diffs.values()}
    if len(n) != 1:
        raise ValueError(f"every variant must be measured on the same eval examples, got sizes {sorted(n)}")
    examples = n.pop()
    seeds = np.random.SeedSequence(seed).spawn(1 + len(names))
    example_rng = np.random.default_rng(seeds[0])
    chain_rngs = {v: np.random.default_rng(s) for v, s in zip(names, seeds[1:], strict=True)}
    boot = {v: {m: np.empty(draws) for m in ("rel", "abs", "flip")} for v in names}
    for start in range(0, draws, _CHUNK):
        stop = min(start + _CHUNK, draws)
        w = _example_multiplicities(example_rng, stop - start, examples)
        for v in names:
            k = diffs[v]["rel"].shape[0]
            m = chain_rngs[v].multinomial(k, np.full(k, 1.0 / k), size=stop - start).astype(np.float64)
            for metric, d in diffs[v].items():
                boot[v][metric][start:stop] = ((w @ d.T) * m).sum(axis=1) / (examples * k)
    point = {v: {m: float(d.mean()) for m, d in diffs[v].items()} for v in names}
    out = []
    for v in names:
        p, b = point[v], boot[v]
        ratio = None
        if point[baseline]["rel"] > 0:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = _interval(p["rel"] / point[baseline]["rel"], b["rel"] / boot[baseline]["rel"],
                                  confidence)
        out.append(ChurnStats(
            variant=v, chains=int(diffs[v]["rel"].shape[0]),
            relative_pd=_interval(p["rel"], b["rel"], confidence),
            absolute_pd=_interval(p["abs"], b["abs"], confidence),
            flip_rate=_interval(p["flip"], b["flip"], confidence),
            ratio=ratio, verdict=BASELINE if v == baseline else verdict(ratio)))
    return tuple(out)


def method(draws: int, seed: int, confidence: float = 0.95, threshold: float = 0.5) -> str:
    """The sentence a report prints under its churn tables."""
    return CHURN_METHOD.format(draws=draws, seed=seed, threshold=threshold, pct=confidence * 100)
