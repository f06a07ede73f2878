"""PD per slice: by a feature's value, or by prediction bucket (where does disagreement live?)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from serving.pd import Replicas, pairwise_pd


def pd_by_slice(
    predictions: Replicas, slice_values: ArrayLike, min_count: int = 1, max_slices: int = 50
) -> list[dict[str, Any]]:
    """Pairwise relative/absolute PD within each value of ``slice_values`` (one per example).

    Slices are reported most frequent first (at most ``max_slices``); a slice with fewer than
    ``min_count`` examples is reported with its count and ``None`` metrics rather than a noisy number.
    """
    preds = [np.asarray(p, dtype=np.float64).reshape(-1) for p in predictions]
    values = np.asarray(slice_values).reshape(-1)
    if values.size != preds[0].size:
        raise ValueError(f"{values.size} slice values for {preds[0].size} examples")
    uniques, counts = np.unique(values.astype(str), return_counts=True)
    order = np.lexsort((uniques, -counts))[:max_slices]
    out: list[dict[str, Any]] = []
    as_str = values.astype(str)
    for idx in order:
        mask = as_str == uniques[idx]
        row: dict[str, Any] = {"slice": str(uniques[idx]), "count": int(counts[idx])}
        if counts[idx] >= max(min_count, 1):
            s = pairwise_pd([p[mask] for p in preds], percentiles=())
            row.update(relative_pd=s.relative.mean, absolute_pd=s.absolute.mean,
                       relative_pd_std=s.relative.std)
        else:
            row.update(relative_pd=None, absolute_pd=None, relative_pd_std=None)
        out.append(row)
    return out


def pd_by_prediction_bucket(
    predictions: Replicas, edges: Sequence[float] = (0.0, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0)
) -> list[dict[str, Any]]:
    """Pairwise PD within buckets of the replicas' mean prediction (low-CTR examples drive relative PD).

    Empty buckets are reported with count 0 and ``None`` metrics.
    """
    preds = [np.asarray(p, dtype=np.float64).reshape(-1) for p in predictions]
    mean = np.mean(preds, axis=0)
    bounds = np.asarray(edges, dtype=np.float64)
    if bounds.ndim != 1 or bounds.size < 2 or np.any(np.diff(bounds) <= 0):
        raise ValueError(f"bucket edges must be increasing with at least 2 values, got {bounds.tolist()}")
    out: list[dict[str, Any]] = []
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        last = i == bounds.size - 2
        mask = (mean >= lo) & ((mean <= hi) if last else (mean < hi))
        row: dict[str, Any] = {"bucket": f"[{lo:g}, {hi:g}{']' if last else ')'}", "count": int(mask.sum())}
        if mask.any():
            s = pairwise_pd([p[mask] for p in preds], percentiles=())
            row.update(relative_pd=s.relative.mean, absolute_pd=s.absolute.mean)
        else:
            row.update(relative_pd=None, absolute_pd=None)
        out.append(row)
    return out
