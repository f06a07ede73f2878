"""Numeric statistics merge exactly: any order Beam merges the chunks' accumulators in gives the same
mean and variance, bit for bit (pipelines/stats.py)."""

from __future__ import annotations

import random

import numpy as np

from pipelines.stats import NumericAcc


def _merged(batches: list[np.ndarray], seed: int) -> NumericAcc:
    """One accumulator per batch, merged along a random tree (as bundles and workers would)."""
    rnd = random.Random(seed)
    accs = []
    for values in batches:
        acc = NumericAcc()
        acc.add(values, 1)
        accs.append(acc)
    while len(accs) > 1:
        rnd.shuffle(accs)
        a, b = accs.pop(), accs.pop()
        accs.append(a.merge(b))
    return accs[0]


def test_any_merge_order_gives_the_same_bits():
    rng = np.random.default_rng(0)
    batches = [rng.lognormal(3.0, 2.0, size=int(rng.integers(1, 500))) for _ in range(60)]
    results = {(a.count, a.missing, a.mean, a.variance, a.min, a.max)
               for a in (_merged(batches, seed) for seed in range(20))}
    assert len(results) == 1, results
    ((count, missing, mean, variance, lo, hi),) = results
    values = np.concatenate(batches)
    assert (count, missing, lo, hi) == (values.size, 60, values.min(), values.max())
    assert mean == np.float64(values.mean()) or abs(mean - values.mean()) <= 1e-13 * abs(values.mean())
    assert abs(variance - values.var()) <= 1e-12 * values.var()


def test_empty_and_constant_features():
    empty = NumericAcc()
    empty.add(np.array([]), 3)
    assert (empty.count, empty.missing, empty.mean, empty.variance) == (0, 3, 0.0, 1.0)
    const = _merged([np.full(7, 2.5), np.full(3, 2.5)], 0)
    assert (const.count, const.mean, const.variance) == (10, 2.5, 0.0)
