"""Run one command once as N unsupervised workers of a local MultiWorkerMirroredStrategy cluster.

For correctness tests and local benchmarks (on a small box the workers share the cores). Built on the
supervisor's pieces (:class:`~recsys.launch.worker.Worker`, free ports, TF_CONFIG) without its restarts:
a worker that hangs past the timeout is stopped with its whole process group, and so are its peers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from recsys.launch import netns
from recsys.launch.placement import local_placement
from recsys.launch.ports import free_ports
from recsys.launch.tf_config import local_hosts, tf_config
from recsys.launch.worker import Worker, stop_workers


@dataclass
class WorkerResult:
    """One finished worker: its index, exit code and what it wrote to stdout and stderr."""

    index: int
    returncode: int
    stdout: str
    stderr: str


def run_local_cluster(
    argv: Sequence[str],
    num_workers: int = 2,
    timeout: float = 300.0,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    pin_cpus: bool = False,
    threads_per_worker: int = 0,
    isolate_network: bool = True,
) -> list[WorkerResult]:
    """Run ``argv`` once per worker with its TF_CONFIG (and placement: :mod:`recsys.launch.placement`),
    in a private network namespace (:mod:`recsys.launch.netns`); raise TimeoutError after stopping a
    hang."""
    hosts = local_hosts(free_ports(num_workers))
    placements = local_placement(num_workers, pin_cpus, threads_per_worker)
    base = dict(os.environ, **(env or {}))
    with tempfile.TemporaryDirectory(prefix="recsys-cluster-") as logs:
        out = [os.path.join(logs, f"worker-{i}.out") for i in range(num_workers)]
        err = [os.path.join(logs, f"worker-{i}.err") for i in range(num_workers)]
        workers: list[Worker] = []
        ns = netns.for_job(isolate_network, lambda line: print(line, file=sys.stderr, flush=True))
        try:
            for i in range(num_workers):
                worker_env = dict(base, **placements[i].env, TF_CONFIG=tf_config(hosts, i))
                workers.append(Worker(i, argv, worker_env, out[i], cwd=cwd, stderr_path=err[i],
                                      cpus=placements[i].cpus, enter=ns.enter if ns else None))
            deadline = time.monotonic() + timeout
            for w in workers:
                try:
                    w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired as hang:
                    stop_workers(workers, 0.0)
                    tails = [_read(path)[-2000:] for path in err]
                    raise TimeoutError(f"local cluster did not finish in {timeout:.0f}s; "
                                       f"stderr tails: {tails}") from hang
        finally:
            stop_workers(workers, 0.0)  # no-op for exited workers; also reaps what they left behind
            if ns is not None:
                ns.close()
        return [WorkerResult(w.index, w.proc.returncode, _read(out[w.index]), _read(err[w.index]))
                for w in workers]


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()
