"""Pick the distribution strategy: MultiWorkerMirroredStrategy when TF_CONFIG describes a cluster.

Create it before any other TensorFlow op runs in the process (collectives are set up when the eager
context initialises). One process without a cluster uses the default strategy (the GPU when there is
one) or MirroredStrategy over several local GPUs; the CPU is never forced.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from recsys.compat import tf

_COLLECTIVES = {
    "AUTO": tf.distribute.experimental.CommunicationImplementation.AUTO,
    "RING": tf.distribute.experimental.CommunicationImplementation.RING,
    "NCCL": tf.distribute.experimental.CommunicationImplementation.NCCL,
}


@dataclass(frozen=True)
class Role:
    """This process in the cluster: task type/index, worker count and whether it is the chief."""

    task_type: str = "worker"
    task_index: int = 0
    num_workers: int = 1
    is_chief: bool = True


def cluster_role(environ: dict | None = None) -> Role:
    """Read TF_CONFIG; no cluster (or one task) -> a single chief."""
    raw = (environ if environ is not None else os.environ).get("TF_CONFIG", "")
    if not raw:
        return Role()
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON: {err}") from err
    cluster = config.get("cluster", {})
    task = config.get("task", {})
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    task_type, index = task.get("type", "worker"), int(task.get("index", 0))
    is_chief = task_type == "chief" or (task_type == "worker" and index == 0 and "chief" not in cluster)
    return Role(task_type, index, max(1, workers), is_chief)


def make_strategy(collective: str = "AUTO") -> tuple[tf.distribute.Strategy, Role]:
    """(strategy, role) for this process; see the module docstring."""
    role = cluster_role()
    if role.num_workers > 1:
        options = tf.distribute.experimental.CommunicationOptions(implementation=_COLLECTIVES[collective])
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options), role
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy(), role
    return tf.distribute.get_strategy(), role
