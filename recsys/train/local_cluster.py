"""Run one command as N workers of a local MultiWorkerMirroredStrategy cluster on 127.0.0.1.

For correctness tests and local benchmarks (on a small box the workers share the cores). Each worker
gets a TF_CONFIG with free ports; a worker that hangs past the timeout is SIGKILLed (TensorFlow traps
SIGTERM), and so are its peers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

from recsys.launch.ports import free_ports
from recsys.launch.tf_config import local_hosts, tf_config


def tf_configs(num_workers: int) -> list[str]:
    """One TF_CONFIG JSON per worker on fresh 127.0.0.1 ports (worker 0 is the chief)."""
    hosts = local_hosts(free_ports(num_workers))
    return [tf_config(hosts, i) for i in range(num_workers)]


@dataclass
class WorkerResult:
    index: int
    returncode: int
    stdout: str
    stderr: str


def run_local_cluster(
    argv: Sequence[str],
    num_workers: int = 2,
    timeout: float = 300.0,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> list[WorkerResult]:
    """Run ``argv`` once per worker with its TF_CONFIG; raise TimeoutError after killing a hang."""
    procs = []
    logs = []
    base = dict(os.environ, **(env or {}))
    for i, worker_config in enumerate(tf_configs(num_workers)):
        out = open(_tmp(f"w{i}.out"), "w+")  # noqa: SIM115
        err = open(_tmp(f"w{i}.err"), "w+")  # noqa: SIM115
        logs.append((out, err))
        procs.append(
            subprocess.Popen(
                list(argv),
                env=dict(base, TF_CONFIG=worker_config),
                cwd=cwd,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        )
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired as err:
        _kill(procs)
        tails = [_read(e)[-2000:] for _, e in logs]
        raise TimeoutError(f"local cluster did not finish in {timeout:.0f}s; stderr tails: {tails}") from err
    finally:
        _kill(procs)
    results = [
        WorkerResult(i, p.returncode, _read(o), _read(e))
        for i, (p, (o, e)) in enumerate(zip(procs, logs, strict=True))
    ]
    for o, e in logs:
        for fh in (o, e):
            fh.close()
            os.unlink(fh.name)
    return results


def _tmp(name: str) -> str:
    fd, path = tempfile.mkstemp(prefix=f"recsys-cluster-{name}-")
    os.close(fd)
    return path


def _read(fh) -> str:
    fh.flush()
    fh.seek(0)
    return fh.read()


def _kill(procs: list[subprocess.Popen]) -> None:
    """SIGKILL any still-running worker (and its process group)."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
