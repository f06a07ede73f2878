"""Pluggable activations: one registry of names, one resolver of names, dicts and callables to Keras layers.

>>> from recsys.activations import get
>>> layer = get("smelu(beta=0.5)")      # a fresh SmeLU layer
>>> layer = get({"name": "gsmelu", "alpha": 0.5, "g_minus": 0.01})

Extend it by decorating a Keras layer class with :func:`register`; see README "Extending the registry".
"""

from recsys.activations import gsmelu, rescu, smelu, standard  # noqa: F401  (registers built-ins)
from recsys.activations.kernels import fusion_enabled, portable_kernels
from recsys.activations.registry import (
    Entry,
    aliases_of,
    choices,
    describe,
    entries,
    lookup,
    names,
    register,
    split_list,
)
from recsys.activations.smelu import smelu as smelu_fn
from recsys.activations.spec import Activation, ActivationLike, canonical, get

__all__ = [
    "Activation",
    "ActivationLike",
    "canonical",
    "choices",
    "Entry",
    "aliases_of",
    "describe",
    "entries",
    "fusion_enabled",
    "get",
    "lookup",
    "names",
    "portable_kernels",
    "register",
    "smelu_fn",
    "split_list",
]
