"""Bootstrap confidence intervals of a study: PD and AUC per variant, PD ratio and AUC delta vs a baseline.

Two-level ("pigeonhole", Owen 2007) bootstrap over eval examples and over replicas. Each draw b:

1. resamples the N eval examples with replacement: one draw of example multiplicities ``w_b``, shared
   by every variant, so each comparison with the baseline is paired on the same examples;
2. resamples each variant's K replicas with replacement, independently per variant (multiplicities
   ``c_b``); the rare draws with fewer than 2 distinct replicas are redrawn.

With ``PD_aa'(w)`` the example-weighted PD of replicas a and a', and ``AUC_a(w)`` replica a's weighted
AUC (Mann-Whitney, ties count one half)::

    PD_b  = sum_{a<a'} c_a c_a' PD_aa'(w_b) / sum_{a<a'} c_a c_a'    # all pairs of distinct resampled
    AUC_b = sum_a c_a AUC_a(w_b) / K                                 # replicas, no self-pairs

Intervals are percentile intervals of the draws; the PD ratio and AUC delta are taken draw by draw.
Resampling both crossed factors is mildly conservative (it counts the example x replica interaction
twice), so a "significant" verdict errs on the safe side.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from serving.pd import relative_difference

FEWER = "fewer disagreements than baseline (significant)"
WITHIN = "within noise"
MORE = "more disagreements (significant)"
BASELINE = "baseline"
UNDEFINED = "undefined (baseline PD is 0)"

METHOD = (
    "Two-level bootstrap ({draws} draws, seed {seed}): each draw resamples the eval examples with "
    "replacement (one draw shared by all variants, so comparisons with the baseline are paired) and each "
    "variant's replicas with replacement (independently per variant; draws with fewer than 2 distinct "
    "replicas are redrawn). PD of a draw is the mean over all pairs of distinct resampled replicas "
    "(pair weight = product of the two replicas' multiplicities; no replica is paired with a copy of "
    "itself); AUC of a draw is the mean over the resampled replicas. {pct:g}% percentile intervals; PD "
    "ratio and AUC delta are computed draw by draw."
)
_CHUNK = 50  # draws per vectorised block (fixed: the random stream, hence the result, depends on it)


@dataclasses.dataclass(frozen=True)
class Interval:
    """A point estimate on the observed data and its bootstrap percentile interval."""

    estimate: float
    lower: float
    upper: float

    def as_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "ci_lower": self.lower, "ci_upper": self.upper}


@dataclasses.dataclass(frozen=True)
class VariantStats:
    """One variant's PD and AUC with intervals, and its comparison with the baseline."""

    variant: str
    replicas: int
    relative_pd: Interval
    absolute_pd: Interval
    auc: Interval
    pd_ratio: Interval | None  # variant PD / baseline PD; None when the baseline's PD is 0
    auc_delta: Interval  # variant AUC - baseline AUC
    verdict: str
    log_pd_sd: float  # bootstrap standard deviation of log(relative PD); NaN when a draw has PD 0

    def as_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "replicas": self.replicas,
                "relative_pd": self.relative_pd.as_dict(), "absolute_pd": self.absolute_pd.as_dict(),
                "auc": self.auc.as_dict(),
                "pd_ratio": self.pd_ratio.as_dict() if self.pd_ratio else None,
                "auc_delta": self.auc_delta.as_dict(), "verdict": self.verdict,
                "log_pd_sd": self.log_pd_sd}


@dataclasses.dataclass(frozen=True)
class StudyStats:
    """Every variant's statistics, the recommended variant and what the study could detect."""

    baseline: str
    recommended: str
    variants: tuple[VariantStats, ...]
    draws: int
    seed: int
    confidence: float
    num_examples: int
    detectable_pd_ratio: float | None  # smallest PD ratio whose CI would exclude 1 (None: undefined)
    method: str

    def variant(self, name: str) -> VariantStats:
        return next(v for v in self.variants if v.variant == name)

    def as_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "recommended": self.recommended, "draws": self.draws,
                "seed": self.seed, "confidence": self.confidence, "num_examples": self.num_examples,
                "detectable_pd_ratio": self.detectable_pd_ratio, "method": self.method,
                "variants": [v.as_dict() for v in self.variants]}


def verdict(ratio: Interval | None) -> str:
    """Fewer / more disagreements when the PD-ratio interval lies below / above 1, else within noise."""
    if ratio is None:
        return UNDEFINED
    if ratio.upper < 1.0:
        return FEWER
    if ratio.lower > 1.0:
        return MORE
    return WITHIN


def detectable_ratio(log_pd_sd: float, confidence: float = 0.95) -> float:
    """exp(-z sqrt(2) sd(log PD)): the PD ratio at which a CI on the log ratio of two variants with the
    baseline's spread stops including 1 (z = 1.96 at 95%)."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return float(math.exp(-z * math.sqrt(2.0) * log_pd_sd))


def pair_differences(preds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair (a < a') and example: relative |p - p'| / mean (0 where both are 0) and absolute |p - p'|."""
    pairs = list(itertools.combinations(range(preds.shape[0]), 2))
    a = preds[[i for i, _ in pairs]]
    b = preds[[j for _, j in pairs]]
    return relative_difference(a, b), np.abs(a - b)


@dataclasses.dataclass(frozen=True)
class _SortedReplica:
    """One replica's predictions sorted once, for the weighted AUCs of many draws at once.

    For a positive at sorted position i in the tie group [s, e], the negatives ranked below it weigh
    ``cum[s - 1] + (cum[e] - cum[s - 1]) / 2 = (cum[s - 1] + cum[e]) / 2`` with ``cum`` the running sum
    of negative weights: Mann-Whitney with ties counting one half.
    """

    order: np.ndarray  # argsort of the predictions
    negative: np.ndarray  # 1.0 where the label is negative, in sorted order
    positives: np.ndarray  # sorted positions of the positives
    group_start: np.ndarray  # per positive: first sorted position of its tie group
    group_end: np.ndarray  # per positive: last sorted position of its tie group

    @classmethod
    def of(cls, preds: np.ndarray, labels: np.ndarray) -> _SortedReplica:
        order = np.argsort(preds, kind="mergesort")
        sorted_p = preds[order]
        new_group = np.concatenate([[True], sorted_p[1:] != sorted_p[:-1]])
        group = np.cumsum(new_group) - 1
        starts = np.flatnonzero(new_group)
        ends = np.concatenate([starts[1:] - 1, [preds.size - 1]])
        positive = labels[order] > 0.5
        positives = np.flatnonzero(positive)
        return cls(order, (~positive).astype(np.float64), positives, starts[group[positives]],
                   ends[group[positives]])

    def auc(self, weights: np.ndarray) -> np.ndarray:
        """Weighted Mann-Whitney AUC for each row of example weights (draws x N); NaN without a class."""
        w = weights[:, self.order]
        cum = np.cumsum(w * self.negative, axis=1)
        below = np.where(self.group_start > 0, cum[:, self.group_start - 1], 0.0)
        ranked_below = 0.5 * (below + cum[:, self.group_end])
        w_pos = w[:, self.positives]
        with np.errstate(invalid="ignore", divide="ignore"):
            result: np.ndarray = np.einsum("bn,bn->b", w_pos, ranked_below) / (w_pos.sum(axis=1) * cum[:, -1])
        return result


def _replica_multiplicities(rng: np.random.Generator, draws: int, k: int) -> np.ndarray:
    """Replica multiplicities (draws x k) of resampling k replicas, each draw with >= 2 distinct."""
    counts = rng.multinomial(k, np.full(k, 1.0 / k), size=draws).astype(np.float64)
    while (bad := np.flatnonzero((counts > 0).sum(axis=1) < 2)).size:
        counts[bad] = rng.multinomial(k, np.full(k, 1.0 / k), size=bad.size)
    return counts


def _example_multiplicities(rng: np.random.Generator, draws: int, n: int) -> np.ndarray:
    """Example multiplicities (draws x n) of resampling n examples with replacement."""
    idx = rng.integers(0, n, size=(draws, n)) + (np.arange(draws) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=draws * n).reshape(draws, n).astype(np.float64)


def _interval(estimate: float, values: np.ndarray, confidence: float) -> Interval:
    alpha = (1.0 - confidence) / 2 * 100
    lower, upper = np.nanpercentile(values, [alpha, 100 - alpha])
    return Interval(float(estimate), float(lower), float(upper))


def checked_baseline(names: Sequence[str], baseline: str | None, draws: int) -> str:
    """The baseline variant (default: the first), after the checks every bootstrap makes."""
    if not names:
        raise ValueError("no variants to compare")
    baseline = names[0] if baseline is None else baseline
    if baseline not in names:
        raise ValueError(f"baseline {baseline!r} is not one of the variants {list(names)}")
    if draws < 2:
        raise ValueError(f"the bootstrap needs at least 2 draws, got {draws}")
    return baseline


def bootstrap_study(predictions: Mapping[str, np.ndarray | Sequence[np.ndarray]], labels: np.ndarray,
                    baseline: str | None = None, draws: int = 1000, seed: int = 0,
                    confidence: float = 0.95) -> StudyStats:
    """Statistics of a study from each variant's replica predictions (K x N, same N examples for all)."""
    names = list(predictions)
    baseline = checked_baseline(names, baseline, draws)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    n = y.size
    preds = {v: np.asarray(p, dtype=np.float64).reshape(len(p), -1) for v, p in predictions.items()}
    for v, arr in preds.items():
        if arr.shape[0] < 2 or arr.shape[1] != n:
            raise ValueError(f"variant {v!r}: need >= 2 replicas x {n} examples, got {arr.shape}")
    seeds = np.random.SeedSequence(seed).spawn(1 + len(names))
    example_rng = np.random.default_rng(seeds[0])
    multiplicity = {v: _replica_multiplicities(np.random.default_rng(s), draws, preds[v].shape[0])
                    for v, s in zip(names, seeds[1:], strict=True)}
    diffs = {v: pair_differences(arr) for v, arr in preds.items()}
    sorted_reps = {v: [_SortedReplica.of(r, y) for r in arr] for v, arr in preds.items()}
    boot = {v: {"rel": np.empty(draws), "abs": np.empty(draws), "auc": np.empty(draws)} for v in names}
    for start in range(0, draws, _CHUNK):
        stop = min(start + _CHUNK, draws)
        w = _example_multiplicities(example_rng, stop - start, n)
        for v in names:
            c = multiplicity[v][start:stop]
            k = c.shape[1]
            pair_w = np.stack([c[:, i] * c[:, j] for i, j in itertools.combinations(range(k), 2)], axis=1)
            pair_w /= pair_w.sum(axis=1, keepdims=True)
            rel, ab = diffs[v]
            boot[v]["rel"][start:stop] = ((w @ rel.T) * pair_w).sum(axis=1) / n  # (w @ D.T: BLAS-fast)
            boot[v]["abs"][start:stop] = ((w @ ab.T) * pair_w).sum(axis=1) / n
            aucs = np.stack([r.auc(w) for r in sorted_reps[v]], axis=1)
            boot[v]["auc"][start:stop] = (c * aucs).sum(axis=1) / k
    ones = np.ones((1, n))
    point = {v: {"rel": float(diffs[v][0].mean()), "abs": float(diffs[v][1].mean()),
                 "auc": float(np.mean([r.auc(ones)[0] for r in sorted_reps[v]]))} for v in names}
    base_p, base_b = point[baseline], boot[baseline]
    out = []
    for v in names:
        p, b = point[v], boot[v]
        if base_p["rel"] > 0:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = _interval(p["rel"] / base_p["rel"], b["rel"] / base_b["rel"], confidence)
        else:
            ratio = None
        log_sd = float(np.std(np.log(b["rel"]), ddof=1)) if np.all(b["rel"] > 0) else float("nan")
        out.append(VariantStats(
            variant=v, replicas=int(preds[v].shape[0]),
            relative_pd=_interval(p["rel"], b["rel"], confidence),
            absolute_pd=_interval(p["abs"], b["abs"], confidence),
            auc=_interval(p["auc"], b["auc"], confidence),
            pd_ratio=ratio,
            auc_delta=_interval(p["auc"] - base_p["auc"], b["auc"] - base_b["auc"], confidence),
            verdict=BASELINE if v == baseline else verdict(ratio), log_pd_sd=log_sd))
    eligible = [s for s in out if s.variant == baseline or not s.auc_delta.upper < 0]
    recommended = min(eligible, key=lambda s: (s.relative_pd.estimate, names.index(s.variant))).variant
    base_sd = next(s.log_pd_sd for s in out if s.variant == baseline)
    return StudyStats(
        baseline=baseline, recommended=recommended, variants=tuple(out), draws=draws, seed=seed,
        confidence=confidence, num_examples=n,
        detectable_pd_ratio=None if math.isnan(base_sd) else detectable_ratio(base_sd, confidence),
        method=METHOD.format(draws=draws, seed=seed, pct=confidence * 100))
