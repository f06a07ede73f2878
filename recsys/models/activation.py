"""The model's single door to the activation registry (``recsys.activations``).

Every nonlinearity of the model is built through :func:`get_activation`, so one config value switches
them all.
"""

from __future__ import annotations

from collections.abc import Callable

from recsys.activations import ActivationLike, portable_kernels
from recsys.activations import get as _registry_get

__all__ = ["get_activation", "portable_kernels", "validate_activation"]


def get_activation(spec: ActivationLike) -> Callable:
    """A fresh activation layer for one use site (learnable activations must not be shared)."""
    return _registry_get(spec)


def validate_activation(spec: ActivationLike) -> None:
    """Raise ValueError now (at config time) for an unknown or malformed activation spec."""
    _registry_get(spec)
