"""Local workers' placement: CPU slices and thread-pool sizes, and that a started worker runs there."""

from __future__ import annotations

import os
import sys

import pytest

from recsys.launch.cluster import run_local_cluster
from recsys.launch.placement import cpu_slices, local_placement


def test_cpu_slices_share_the_cpus_or_take_turns():
    assert cpu_slices(2, [0, 1, 2, 3, 4]) == [frozenset({0, 1}), frozenset({2, 3})]
    assert cpu_slices(4, [0, 1]) == [frozenset({0}), frozenset({1}), frozenset({0}), frozenset({1})]
    assert cpu_slices(1, [5, 7]) == [frozenset({5, 7})]
    assert cpu_slices(2, []) == [frozenset(), frozenset()]


def test_placement_sets_thread_pools_only_when_asked():
    pinned = local_placement(2, True, 2, available=[0, 1])
    assert [p.cpus for p in pinned] == [frozenset({0}), frozenset({1})]
    assert pinned[0].env == {"TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "2",
                             "OMP_NUM_THREADS": "2"}
    free = local_placement(3, False, 0, available=[0, 1])
    assert all(p.cpus == frozenset() and p.env == {} for p in free)
    with pytest.raises(ValueError, match="threads per worker must be >= 0"):
        local_placement(2, True, -1)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="CPU affinity is Linux-only")
def test_started_workers_run_on_their_cpus_with_their_pools():
    probe = ("import os, json; print(json.dumps({'cpus': sorted(os.sched_getaffinity(0)), "
             "'intra': os.environ.get('TF_NUM_INTRAOP_THREADS')}))")
    available = sorted(os.sched_getaffinity(0))
    results = run_local_cluster([sys.executable, "-c", probe], num_workers=2, timeout=60, pin_cpus=True,
                                threads_per_worker=3)
    import json

    got = [json.loads(r.stdout) for r in sorted(results, key=lambda r: r.index)]
    assert [g["cpus"] for g in got] == [sorted(s) for s in cpu_slices(2, available)]
    assert [g["intra"] for g in got] == ["3", "3"]
