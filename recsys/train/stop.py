"""A stop request that every worker of a cluster obeys at the same step.

A Ctrl-C or SIGTERM reaches the workers of a cluster at different moments (or only one of them). A
worker that stopped alone would leave its peers waiting in the next step's collectives, so after
every chunk the workers all-reduce their flags: all of them stop at the first chunk boundary at which
any one asked. The chunk boundaries are the same on every worker (they come from the config and the
supervisor's heartbeat interval), so the all-reduces pair up. One scalar all-reduce per chunk; it
touches no weights, so the numbers of a run do not change.
"""

from __future__ import annotations

from collections.abc import Callable

from recsys.compat import tf


def agreed(strategy: tf.distribute.Strategy, requested: Callable[[], bool]) -> Callable[[], bool]:
    """``stop()``: True on every worker as soon as ``requested()`` is True on any one of them."""

    @tf.function(input_signature=[tf.TensorSpec([], tf.float32)], autograph=False)
    def any_worker(flag: tf.Tensor) -> tf.Tensor:
        per_replica = strategy.run(tf.identity, args=(flag,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def stop() -> bool:
        return float(any_worker(tf.constant(1.0 if requested() else 0.0))) > 0.0

    return stop
