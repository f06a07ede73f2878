"""Where the workers of a local cluster run: CPUs per worker and TensorFlow's thread pools.

On one machine every worker of a MultiWorkerMirroredStrategy job starts TensorFlow's default pools,
sized to *all* cores, so N workers oversubscribe the box N times over and a worker blocked in a
collective holds threads the others need. ``pin_cpus`` gives worker ``i`` its own slice of the CPUs
(``os.sched_setaffinity``, Linux); ``threads`` sizes its intra-op and inter-op pools
(``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS``, read when TensorFlow starts). Keep at least
two threads per worker: with one, a step's collective waits on the thread the rest of the step needs
(benchmarks/train.py measured 2.4x slower steps on this box; docs/training.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# The local cluster's defaults (recsys submit, the study's and demo's local jobs): measured best on a
# 2-core box, see docs/training.md.
DEFAULT_PIN_CPUS = True
DEFAULT_THREADS = 2


@dataclass(frozen=True)
class Placement:
    """One worker's CPUs (empty: wherever the OS puts it) and environment for its thread pools."""

    cpus: frozenset[int] = frozenset()
    env: dict[str, str] = field(default_factory=dict)


def cpu_slices(num_workers: int, cpus: list[int]) -> list[frozenset[int]]:
    """Worker i's CPUs: an equal contiguous share, or one CPU each in turn when there are fewer CPUs
    than workers."""
    if not cpus:
        return [frozenset()] * num_workers
    if len(cpus) < num_workers:
        return [frozenset({cpus[i % len(cpus)]}) for i in range(num_workers)]
    share = len(cpus) // num_workers
    return [frozenset(cpus[i * share : (i + 1) * share]) for i in range(num_workers)]


def local_placement(num_workers: int, pin_cpus: bool, threads: int,
                    available: list[int] | None = None) -> list[Placement]:
    """The placement of each of ``num_workers`` local workers (``threads`` 0: TensorFlow's default)."""
    if threads < 0:
        raise ValueError(f"threads per worker must be >= 0, got {threads}")
    if available is None:
        available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    slices = cpu_slices(num_workers, available) if pin_cpus else [frozenset()] * num_workers
    env = {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(threads),
           "OMP_NUM_THREADS": str(threads)} if threads else {}
    return [Placement(s, dict(env)) for s in slices]


def pin(cpus: frozenset[int]) -> None:
    """Restrict the calling process to ``cpus`` (nothing when empty or unsupported)."""
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
