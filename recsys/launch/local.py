"""Supervise a local MultiWorkerMirroredStrategy job like a TFJob with ``restartPolicy: OnFailure``.

Every attempt starts N workers on fresh 127.0.0.1 ports, waits at a startup barrier (each worker must
come up within ``startup_timeout``), then watches for exits and stalls (no output or heartbeat for
``heartbeat_timeout``). Any failure stops all workers (SIGTERM, then SIGKILL after a grace period) and,
up to ``backoff_limit`` times, restarts them after an exponentially growing delay; the trainer resumes
exactly from its backup (a worker exiting with :data:`EXIT_NOT_RETRIABLE`, a refusal, is not
retried). Worker 0 (the chief) exiting 0 ends the job successfully.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

from pipelines import atomic
from recsys.launch import netns
from recsys.launch.placement import DEFAULT_PIN_CPUS, DEFAULT_THREADS, local_placement
from recsys.launch.ports import free_ports
from recsys.launch.tf_config import local_hosts, tf_config
from recsys.launch.worker import Worker, stop_workers
from recsys.train import heartbeat
from recsys.train.run_dir import STATUS_FILE, RunDir
from recsys.train.run_state import EXIT_REFUSED

# A worker exiting with this code (the trainer's refusal) would fail the same way again: not retried.
EXIT_NOT_RETRIABLE = EXIT_REFUSED


@dataclass(frozen=True)
class LocalJobSpec:
    """What to run and how to supervise it. ``command`` is the same for every worker."""

    command: Sequence[str]
    num_workers: int
    log_dir: str
    startup_timeout: float = 180.0
    heartbeat_timeout: float = 600.0
    backoff_limit: int = 3
    backoff_delay: float = 10.0  # before the first restart; doubled for each further one
    backoff_max_delay: float = 300.0
    grace_period: float = 10.0
    poll_interval: float = 0.5
    status_every: float = 30.0
    heartbeat_every: int = 10
    stream_logs: bool = True
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    backup_dir: str = ""  # reported at each restart when it holds state to resume from
    model_dir: str = ""  # the trainer's: its fingerprint.json gives the export path and digests
    pin_cpus: bool = DEFAULT_PIN_CPUS  # worker i on its own slice of the CPUs (recsys.launch.placement)
    threads_per_worker: int = DEFAULT_THREADS  # TensorFlow intra-/inter-op threads; 0: TF's default
    isolate_network: bool = True  # each attempt's workers in a private network namespace (netns)


@dataclass
class AttemptResult:
    """One attempt: whether it succeeded, why it ended, where each worker started."""

    attempt: int
    ok: bool
    reason: str
    failed_worker: int | None
    seconds: float
    ports: list[int]
    pids: list[int]
    first_steps: list[int | None]
    first_epochs: list[int | None]
    last_steps: list[int | None]
    retriable: bool = True
    network_isolated: bool = False  # the workers ran in a private network namespace


@dataclass
class JobResult:
    """The job: success, attempts, total seconds, the chief's export path and a one-line message."""

    ok: bool
    message: str
    seconds: float
    attempts: list[AttemptResult]
    export_path: str | None = None
    fingerprint: dict | None = None


class _AttemptEnded(Exception):
    def __init__(self, ok: bool, reason: str, worker: int | None = None, retriable: bool = True) -> None:
        super().__init__(reason)
        self.ok, self.reason, self.worker, self.retriable = ok, reason, worker, retriable


class Printer:
    """Thread-safe line output shared by the supervisor and the workers' reader threads."""

    def __init__(self, write: Callable[[str], object] | None = None) -> None:
        self._lock = threading.Lock()
        self._write = write

    def __call__(self, line: str) -> None:
        with self._lock:
            if self._write is not None:
                self._write(line + "\n")
            else:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()


def restart_delay(spec: LocalJobSpec, restart: int) -> float:
    """Seconds to wait before restart number ``restart`` (1-based): base * 2**(restart-1), capped."""
    return min(spec.backoff_delay * 2 ** (restart - 1), spec.backoff_max_delay)


def run_local_job(spec: LocalJobSpec, printer: Printer | None = None) -> JobResult:
    """Run the job to success or until the backoff limit is spent; always leaves no worker running."""
    say = printer or Printer()
    os.makedirs(spec.log_dir, exist_ok=True)
    start = time.monotonic()
    attempts: list[AttemptResult] = []
    max_attempts = spec.backoff_limit + 1
    result: JobResult | None = None
    try:
        for attempt in range(1, max_attempts + 1):
            if attempt > 1:
                delay = restart_delay(spec, attempt - 1)
                say(f"[submit] restart {attempt - 1}/{spec.backoff_limit} in {delay:.1f}s "
                    f"(elapsed {time.monotonic() - start:.1f}s)")
                time.sleep(delay)
            outcome = _run_attempt(spec, attempt, max_attempts, start, say)
            attempts.append(outcome)
            if outcome.ok or not outcome.retriable:
                break
        last = attempts[-1]
        seconds = time.monotonic() - start
        if last.ok:
            fp = _fingerprint(spec.model_dir)
            export = fp.get("export_path") if fp else None
            digest = f"; weights sha256 {fp['weights_sha256'][:16]}..." if fp else ""
            message = (f"job succeeded in {seconds:.1f}s after {len(attempts)} attempt(s){digest}"
                       f"{f'; export: {export}' if export else ''}")
            result = JobResult(True, message, seconds, attempts, export, fp)
        else:
            why = "not retriable" if not last.retriable else f"backoff limit {spec.backoff_limit} reached"
            message = (f"job failed after {len(attempts)} attempt(s) in {seconds:.1f}s ({why}): "
                       f"{last.reason}")
            result = JobResult(False, message, seconds, attempts)
        return result
    finally:
        _write_status(spec, attempts, result, time.monotonic() - start)


def _log_name(index: int, attempt: int) -> str:
    return f"worker-{index}.attempt-{attempt}.log"


def _run_attempt(spec: LocalJobSpec, attempt: int, max_attempts: int, job_start: float,
                 say: Printer) -> AttemptResult:
    ports = free_ports(spec.num_workers)
    hosts = local_hosts(ports)
    say(f"[submit] attempt {attempt}/{max_attempts}: starting {spec.num_workers} worker(s) on "
        f"{', '.join(hosts)} (elapsed {time.monotonic() - job_start:.1f}s)")
    if attempt > 1 and spec.backup_dir and os.path.isdir(spec.backup_dir) and os.listdir(spec.backup_dir):
        say(f"[submit] backup state in {spec.backup_dir}: training resumes from it")
    workers: list[Worker] = []
    placements = local_placement(spec.num_workers, spec.pin_cpus, spec.threads_per_worker)
    ns = netns.for_job(spec.isolate_network, lambda line: say(f"[submit] {line}"))
    t0 = time.monotonic()
    try:
        try:
            for i in range(spec.num_workers):
                hb_file = os.path.join(spec.log_dir, f"worker-{i}.heartbeat")
                if os.path.exists(hb_file):
                    os.unlink(hb_file)
                env = dict(os.environ, **placements[i].env, **spec.env, TF_CONFIG=tf_config(hosts, i),
                           PYTHONUNBUFFERED="1", RECSYS_LAUNCH_ATTEMPT=str(attempt))
                env[heartbeat.HEARTBEAT_FILE_ENV] = hb_file
                env[heartbeat.HEARTBEAT_EVERY_ENV] = str(spec.heartbeat_every)
                workers.append(Worker(i, spec.command, env, os.path.join(spec.log_dir, _log_name(i, attempt)),
                                      echo=say if spec.stream_logs else None, heartbeat_file=hb_file,
                                      cwd=spec.cwd, cpus=placements[i].cpus,
                                      enter=ns.enter if ns else None))
            pids = ", ".join(f"worker-{w.index}={w.pid}" for w in workers)
            say(f"[submit] attempt {attempt}: pids {pids}")
            _watch(spec, workers, attempt, say)
            raise AssertionError("unreachable")
        except OSError as err:  # the worker command itself cannot be started
            raise _AttemptEnded(False, f"worker-{len(workers)} could not be started: {err} "
                                f"(command: {' '.join(spec.command)})", len(workers),
                                retriable=False) from None
    except _AttemptEnded as end:
        seconds = time.monotonic() - t0
        if not end.ok:
            say(f"[submit] attempt {attempt} failed after {seconds:.1f}s: {end.reason}")
            say("[submit] stopping all workers")
        stop_workers(workers, 1.0 if end.ok else spec.grace_period)
        return AttemptResult(attempt, end.ok, end.reason, end.worker, seconds, ports,
                             [w.pid for w in workers], [w.first_step for w in workers],
                             [w.first_epoch for w in workers], [w.step for w in workers],
                             end.retriable, ns is not None)
    finally:
        stop_workers(workers, spec.grace_period)  # no-op when already stopped; runs on Ctrl-C too
        if ns is not None:
            ns.close()


def _watch(spec: LocalJobSpec, workers: list[Worker], attempt: int, say: Printer) -> None:
    """Poll the workers until the attempt ends; raises :class:`_AttemptEnded`."""
    t0 = time.monotonic()
    up_at: float | None = None
    last_status = t0
    announced: set[int] = set()
    while True:
        now = time.monotonic()
        for w in workers:
            w.check_heartbeat()
            if w.index not in announced and (w.first_step is not None or w.first_epoch is not None):
                announced.add(w.index)
                where = [f"global step {w.first_step}" if w.first_step is not None else "",
                         f"epoch {w.first_epoch}" if w.first_epoch is not None else ""]
                say(f"[submit] attempt {attempt}: worker-{w.index} started training at "
                    f"{', '.join(x for x in where if x)}")
        codes = [w.poll() for w in workers]
        # Blame a worker killed by a signal before one that exited with an error: when one worker
        # dies, its peers' collectives abort and they exit with code 1 soon after.
        failed = sorted((code > 0, w.index) for w, code in zip(workers, codes, strict=True)
                        if code not in (None, 0))
        if failed:
            w = workers[failed[0][1]]
            w.join_output(2.0)
            refused = any(code == EXIT_NOT_RETRIABLE for code in codes)
            raise _AttemptEnded(False, f"worker-{w.index} (pid {w.pid}) {w.describe_exit()}"
                                f"{' (not retriable: the trainer refused to start)' if refused else ''}; "
                                f"last output:\n{w.last_lines()}", w.index, retriable=not refused)
        if codes[0] == 0:
            _finish(spec, workers, say)
            raise _AttemptEnded(True, "worker-0 (chief) exited with code 0")
        if up_at is None:
            # One worker has no cluster to join (no strategy line): any output means it is up.
            alone = len(workers) == 1 and workers[0].output_seen
            if alone or all(w.ready or code == 0 for w, code in zip(workers, codes, strict=True)):
                up_at = now
                say(f"[submit] attempt {attempt}: all {len(workers)} worker(s) up after {now - t0:.1f}s")
            elif now - t0 > spec.startup_timeout:
                raise _AttemptEnded(False, _barrier_reason(spec, workers, codes), _first_not_ready(workers))
        else:
            for w, code in zip(workers, codes, strict=True):
                if code is None and w.silent_for() > spec.heartbeat_timeout:
                    raise _AttemptEnded(False, f"worker-{w.index} (pid {w.pid}) stalled: no output or "
                                        f"heartbeat for {w.silent_for():.0f}s (heartbeat timeout "
                                        f"{spec.heartbeat_timeout:.0f}s); last output:\n{w.last_lines()}",
                                        w.index)
        if now - last_status >= spec.status_every:
            last_status = now
            steps = ", ".join(f"worker-{w.index} " + ("done" if c == 0 else f"step {w.step}" if w.step
                                                      is not None else "running") for w, c in zip(
                workers, codes, strict=True))
            say(f"[submit] attempt {attempt}: {now - t0:.0f}s: {steps}")
        time.sleep(spec.poll_interval)


def _finish(spec: LocalJobSpec, workers: list[Worker], say: Printer) -> None:
    """The chief is done: give the other workers a grace period to exit on their own."""
    deadline = time.monotonic() + spec.grace_period
    for w in workers[1:]:
        while w.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if w.poll() is None:
            say(f"[submit] worker-{w.index} still running after the chief finished; stopping it")
    for w in workers:
        w.join_output(2.0)


def _first_not_ready(workers: list[Worker]) -> int | None:
    silent = [w.index for w in workers if not w.output_seen]
    waiting = [w.index for w in workers if not w.ready]
    first = silent or waiting
    return first[0] if first else None


def _barrier_reason(spec: LocalJobSpec, workers: list[Worker], codes: list[int | None]) -> str:
    parts = []
    for w, code in zip(workers, codes, strict=True):
        if w.ready or code == 0:
            continue
        if not w.output_seen:
            parts.append(f"worker-{w.index} (pid {w.pid}) never came up: no output at all")
        else:
            parts.append(f"worker-{w.index} (pid {w.pid}) printed output but did not join the cluster; "
                         f"last output:\n{w.last_lines(4)}")
    return (f"startup barrier timed out after {spec.startup_timeout:.0f}s: " + "; ".join(parts))


def _fingerprint(model_dir: str) -> dict | None:
    """The trainer's fingerprint.json (export path, weights digest, resumes), or None."""
    return RunDir(model_dir).read_fingerprint()


def _write_status(spec: LocalJobSpec, attempts: list[AttemptResult], result: JobResult | None,
                  seconds: float) -> None:
    """``<log_dir>/status.json``: the machine-readable record of the job (tests and scripts read it)."""
    status = {"ok": bool(result and result.ok), "message": result.message if result else "interrupted",
              "seconds": round(seconds, 2), "export_path": result.export_path if result else None,
              "fingerprint": result.fingerprint if result else None,
              "num_workers": spec.num_workers, "attempts": [asdict(a) for a in attempts]}
    atomic.write_json(os.path.join(spec.log_dir, STATUS_FILE), status)
