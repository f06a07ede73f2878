"""Training input: tf.data pipelines over the feature-spec shards.

The tf.data names load TensorFlow on first use only, so TensorFlow-free code (the supervisor's run
identity) can import :mod:`recsys.data.order`.
"""

from typing import Any

__all__ = ["make_dataset", "parse_batch", "shard_files"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from recsys.data import input as _input

        return getattr(_input, name)
    raise AttributeError(f"module 'recsys.data' has no attribute {name!r}")
