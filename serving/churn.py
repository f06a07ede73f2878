"""Top-k churn: how much of a ranked list changes between two replicas for the same query."""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import ArrayLike

from serving.pd import Replicas


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
