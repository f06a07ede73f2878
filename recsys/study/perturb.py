"""Numerical noise as a nondeterminism source: a tiny relative perturbation of the initial weights.

It stands in for what a CPU cannot show (GPU atomics, all-reduce order): two replicas with the same
seed and data order start 1e-7 (relative) apart and the study measures where training takes them.
"""

from __future__ import annotations

import numpy as np


def perturb_weights(model, scale: float, seed: int) -> float:
    """Multiply every trainable weight by (1 + scale * N(0, 1)); returns the largest relative change."""
    rng = np.random.default_rng(seed)
    largest = 0.0
    for var in model.trainable_variables:
        value = var.numpy()
        noise = rng.standard_normal(value.shape)
        new = (value * (1.0 + scale * noise)).astype(value.dtype)
        var.assign(new)
        nonzero = value != 0
        if np.any(nonzero):
            largest = max(largest, float(np.max(np.abs(new[nonzero] / value[nonzero] - 1.0))))
    return largest
