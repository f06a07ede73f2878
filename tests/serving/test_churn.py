"""Churn's two metrics on hand-computed arrays: TFMA-style flip rates and top-k churn (serving.churn)."""

from __future__ import annotations

import numpy as np
import pytest

from serving import churn

BASE = [0.9, 0.2, 0.6, 0.4, 0.5]
CAND = [0.8, 0.7, 0.3, 0.4, 0.51]


def test_flip_rates_golden_numbers():
    # > 0.5: base T F T F F (0.5 is not > 0.5), candidate T T F F T -> neg->pos at 1 and 4, pos->neg at 2.
    f = churn.flip_rates(BASE, CAND)
    assert (f.neg_to_pos_flip_rate, f.pos_to_neg_flip_rate) == (pytest.approx(0.4), pytest.approx(0.2))
    assert f.flip_rate == pytest.approx(0.6) and f.threshold == 0.5
    # > 0.35: base T F T T T, candidate T T F T T -> one flip each way.
    g = churn.flip_rates(BASE, CAND, threshold=0.35)
    assert (g.flip_rate, g.neg_to_pos_flip_rate, g.pos_to_neg_flip_rate) == pytest.approx((0.4, 0.2, 0.2))
    # Direction is relative to the baseline: swapping the models swaps the two rates.
    r = churn.flip_rates(CAND, BASE)
    assert (r.neg_to_pos_flip_rate, r.pos_to_neg_flip_rate) == pytest.approx((0.2, 0.4))
    assert churn.flip_rates(BASE, BASE).flip_rate == 0.0


def test_pairwise_flip_rate_is_the_mean_over_replica_pairs():
    # pairs (base, cand) 0.6, (base, base) 0, (cand, base) 0.6 -> 0.4
    assert churn.pairwise_flip_rate([BASE, CAND, BASE]) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="at least 2"):
        churn.pairwise_flip_rate([BASE])
    with pytest.raises(ValueError, match="equally many"):
        churn.flip_rates([0.1], [0.1, 0.2])


def test_topk_churn_golden_numbers():
    a, b, c = [5, 4, 3, 2, 1], [1, 2, 3, 4, 5], [5, 4, 1, 3, 2]
    assert churn.topk_churn([a, b], k=2) == 1.0
    assert churn.topk_churn([a, b], k=5) == 0.0
    assert churn.topk_churn([a, c], k=3) == pytest.approx(1 / 3)  # top-3 {0,1,2} vs {0,1,3}
    # Two queries: identical lists in q1, disjoint top-1 in q2 -> mean 0.5.
    assert churn.topk_churn([[3, 2, 1, 9, 1], [3, 2, 1, 1, 9]], query_ids=[1, 1, 1, 2, 2], k=1) == 0.5
    with pytest.raises(ValueError, match="at least 2"):
        churn.topk_churn([a], k=2)


def test_query_ids_by_request_groups_consecutive_rows_like_the_monitor():
    np.testing.assert_array_equal(churn.query_ids_by_request(5, 2), [0, 0, 1, 1, 2])
    # q0 = rows 0-2 (same top-1), q1 = rows 3-4 (top-1 differs) -> 0.5
    ids = churn.query_ids_by_request(5, 3)
    assert churn.topk_churn([[3, 2, 1, 9, 1], [3, 2, 1, 1, 9]], query_ids=ids, k=1) == 0.5
