"""Training: strategy selection, determinism, the task, the trainer and prediction helpers.

The names below are imported lazily, so the TensorFlow-free modules of this package (``run_dir``,
``run_state``, ``run_lock``, ``fingerprint``, ``controller``) can be used by the supervisor without
starting TensorFlow. (``predict`` and
``labels`` live in :mod:`recsys.train.predict`: a lazy name equal to a submodule's would be shadowed
by the submodule once it is imported.)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Role": "recsys.train.strategy",
    "cluster_role": "recsys.train.strategy",
    "make_strategy": "recsys.train.strategy",
    "check_config": "recsys.train.trainer",
    "train": "recsys.train.trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'recsys.train' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
