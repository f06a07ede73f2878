"""Churn between models, two metrics with two names.

- ``flip_rate`` (TFMA's ``BooleanFlipRates``): the share of examples whose decision, prediction >
  threshold, differs between a baseline and a candidate; ``neg_to_pos_flip_rate`` and
  ``pos_to_neg_flip_rate`` split it by direction (baseline negative -> candidate positive, and back).
- ``topk_churn``: how much of a ranked list (top k per query) changes between two replicas.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
from numpy.typing import ArrayLike

from serving.pd import Replicas


@dataclasses.dataclass(frozen=True)
class FlipRates:
    """TFMA ``BooleanFlipRates`` of a candidate against a baseline at one decision threshold."""

    flip_rate: float
    neg_to_pos_flip_rate: float
    pos_to_neg_flip_rate: float
    threshold: float


def flip_rates(baseline: ArrayLike, candidate: ArrayLike, threshold: float = 0.5) -> FlipRates:
    """Shares of examples whose decision (prediction > ``threshold``) flips, in total and by direction."""
    a = np.asarray(baseline, dtype=np.float64).reshape(-1)
    b = np.asarray(candidate, dtype=np.float64).reshape(-1)
    if a.size == 0 or a.shape != b.shape:
        raise ValueError(f"flip rates need equally many predictions (> 0), got {a.size} and {b.size}")
    pa, pb = a > threshold, b > threshold
    n2p, p2n = float(np.mean(~pa & pb)), float(np.mean(pa & ~pb))
    return FlipRates(n2p + p2n, n2p, p2n, float(threshold))


def pairwise_flip_rate(predictions: Replicas, threshold: float = 0.5) -> float:
    """Mean ``flip_rate`` over every pair of K >= 2 replicas' predictions on the same rows."""
    preds = [np.asarray(p, dtype=np.float64).reshape(-1) for p in predictions]
    if len(preds) < 2:
        raise ValueError(f"flip rate needs at least 2 replicas, got {len(preds)}")
    pairs = itertools.combinations(preds, 2)
    return float(np.mean([flip_rates(x, y, threshold).flip_rate for x, y in pairs]))


def topk_churn(scores: Replicas, query_ids: ArrayLike | None = None, k: int = 10) -> float:
    """Mean over queries and replica pairs of 1 - |top-k(a) ∩ top-k(b)| / k'.

    ``scores`` holds one array per replica, aligned on the same (query, item) rows. ``query_ids``
    groups rows into queries (one ranked list per query; all rows are one list when omitted).
    k' = min(k, items of the query). Ties break by row order, identically for every replica.
    """
    arrays = [np.asarray(s, dtype=np.float64).reshape(-1) for s in scores]
    if len(arrays) < 2:
        raise ValueError(f"churn needs at least 2 replicas, got {len(arrays)}")
    n = arrays[0].size
    if n == 0 or any(a.size != n for a in arrays):
        raise ValueError("replica scores must be non-empty and aligned on the same rows")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    groups = np.zeros(n, dtype=np.int64) if query_ids is None else np.asarray(query_ids).reshape(-1)
    if groups.size != n:
        raise ValueError(f"{groups.size} query ids for {n} rows")
    _, inverse = np.unique(groups, return_inverse=True)
    rows_by_query = np.split(np.argsort(inverse, kind="stable"),
                             np.cumsum(np.bincount(inverse))[:-1])
    churn = []
    for rows in rows_by_query:
        kk = min(k, rows.size)
        tops = [set(rows[np.argsort(-a[rows], kind="stable")[:kk]].tolist()) for a in arrays]
        for x, y in itertools.combinations(tops, 2):
            churn.append(1.0 - len(x & y) / kk)
    return float(np.mean(churn))


def query_ids_by_request(num_rows: int, rows_per_request: int) -> np.ndarray:
    """Query ids that make each run of ``rows_per_request`` consecutive rows one query, as the
    monitor's requests are (so an offline top-k churn equals the monitor's over the same rows)."""
    if rows_per_request < 1:
        raise ValueError(f"rows per request must be >= 1, got {rows_per_request}")
    return np.arange(num_rows) // rows_per_request
