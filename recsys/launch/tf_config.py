"""TF_CONFIG for MultiWorkerMirroredStrategy: a ``worker`` list and this task's index (worker 0 is chief)."""

from __future__ import annotations

import json
from collections.abc import Sequence


def tf_config(hosts: Sequence[str], index: int) -> str:
    """The TF_CONFIG JSON for worker ``index`` of the cluster ``hosts`` (``"host:port"`` strings)."""
    if not 0 <= index < len(hosts):
        raise ValueError(f"worker index {index} is outside the cluster of {len(hosts)} workers")
    return json.dumps({"cluster": {"worker": list(hosts)}, "task": {"type": "worker", "index": index}})


def local_hosts(ports: Sequence[int], host: str = "127.0.0.1") -> list[str]:
    """``host:port`` for each port."""
    return [f"{host}:{port}" for port in ports]
