"""Weights digests: SHA-256 over a model's tensors, independent of variable names and order.

Each tensor is hashed with its dtype and shape, and the sorted hashes are hashed again, so the
trainer's in-memory model (:mod:`recsys.train.fingerprint`) and its SavedModel export
(:mod:`recsys.repro.compare`) give the same digest. NumPy only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt


def tensor_digest(array: npt.ArrayLike) -> str:
    """SHA-256 of one tensor: dtype, shape and the little-endian C-order bytes."""
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def weights_digest(arrays: Iterable[npt.ArrayLike]) -> str:
    """Name- and order-independent SHA-256 of a model's weights."""
    parts = sorted(tensor_digest(np.asarray(a)) for a in arrays)
    return hashlib.sha256("".join(parts).encode()).hexdigest()
