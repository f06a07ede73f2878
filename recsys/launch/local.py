"""Supervise a local MultiWorkerMirroredStrategy job like a TFJob with ``restartPolicy: OnFailure``.

Every attempt starts N workers on fresh 127.0.0.1 ports, waits at a startup barrier (each worker must
come up within ``startup_timeout``), then watches for exits and stalls (no output or heartbeat for
``heartbeat_timeout``). Any failure stops all workers (SIGTERM, then SIGKILL after a grace period) and,
up to ``backoff_limit`` times, restarts them after an exponentially growing delay; the trainer resumes
exactly from its backup (a worker exiting with :data:`EXIT_NOT_RETRIABLE`, a refusal, is not
retried). Worker 0 (the chief) exiting 0 ends the job successfully.

A :class:`StopRequest` (the submitter's Ctrl-C or SIGTERM) is forwarded to the workers, which stop
together at the next step boundary with a backup of that step; a second one stops them at once.
``<log_dir>/status.json`` records what happened: the state, the steps done, the backup's step and
the export, if any.
"""

from __future__ import annotations

import os
import signal
import time

from recsys.launch import netns
from recsys.launch.job import AttemptResult, JobResult, LocalJobSpec, StopRequest, job_result, write_status
from recsys.launch.output import Printer
from recsys.launch.placement import local_placement
from recsys.launch.ports import free_ports
from recsys.launch.tf_config import local_hosts, tf_config
from recsys.launch.worker import Worker, stop_workers
from recsys.train import heartbeat
from recsys.train.run_state import EXIT_REFUSED

# A worker exiting with this code (the trainer's refusal) would fail the same way again: not retried.
EXIT_NOT_RETRIABLE = EXIT_REFUSED
__all__ = ["EXIT_NOT_RETRIABLE", "AttemptResult", "JobResult", "LocalJobSpec", "Printer", "StopRequest",
           "restart_delay", "run_local_job"]


class _AttemptEnded(Exception):
    def __init__(self, ok: bool, reason: str, worker: int | None = None, retriable: bool = True,
                 stopped: bool = False) -> None:
        super().__init__(reason)
        self.ok, self.reason, self.worker, self.retriable = ok, reason, worker, retriable
        self.stopped = stopped


def restart_delay(spec: LocalJobSpec, restart: int) -> float:
    """Seconds to wait before restart number ``restart`` (1-based): base * 2**(restart-1), capped."""
    return min(spec.backoff_delay * 2 ** (restart - 1), spec.backoff_max_delay)


def run_local_job(spec: LocalJobSpec, printer: Printer | None = None,
                  stop: StopRequest | None = None) -> JobResult:
    """Run the job to success, until the backoff limit is spent or until ``stop`` is requested;
    always leaves no worker running."""
    say = printer or Printer()
    stop = stop or StopRequest()
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
                _pause(delay, stop)
            if stop.signum:
                break
            outcome = _run_attempt(spec, attempt, max_attempts, start, say, stop)
            attempts.append(outcome)
            if outcome.ok or not outcome.retriable or outcome.stopped:
                break
        result = job_result(spec, attempts, time.monotonic() - start, stop)
        return result
    finally:
        write_status(spec, attempts, result, time.monotonic() - start)


def _pause(seconds: float, stop: StopRequest) -> None:
    """Sleep ``seconds``, or less when a stop is requested."""
    deadline = time.monotonic() + seconds
    while not stop.signum and time.monotonic() < deadline:
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def _log_name(index: int, attempt: int) -> str:
    return f"worker-{index}.attempt-{attempt}.log"


def _run_attempt(spec: LocalJobSpec, attempt: int, max_attempts: int, job_start: float,
                 say: Printer, stop: StopRequest) -> AttemptResult:
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
                           PYTHONUNBUFFERED="1")
                env[heartbeat.LAUNCH_ATTEMPT_ENV] = str(attempt)
                env[heartbeat.HEARTBEAT_FILE_ENV] = hb_file
                env[heartbeat.HEARTBEAT_EVERY_ENV] = str(spec.heartbeat_every)
                workers.append(Worker(i, spec.command, env, os.path.join(spec.log_dir, _log_name(i, attempt)),
                                      echo=say.worker_echo(spec.stream_heartbeats) if spec.stream_logs
                                      else None, heartbeat_file=hb_file,
                                      cwd=spec.cwd, cpus=placements[i].cpus,
                                      enter=ns.enter if ns else None))
            pids = ", ".join(f"worker-{w.index}={w.pid}" for w in workers)
            say(f"[submit] attempt {attempt}: pids {pids}")
            _watch(spec, workers, attempt, say, stop)
            raise AssertionError("unreachable")
        except OSError as err:  # the worker command itself cannot be started
            raise _AttemptEnded(False, f"worker-{len(workers)} could not be started: {err} "
                                f"(command: {' '.join(spec.command)})", len(workers),
                                retriable=False) from None
    except _AttemptEnded as end:
        seconds = time.monotonic() - t0
        if end.stopped and not end.ok and end.reason != _STOPPED:
            say(f"[submit] {end.reason}: stopping every worker now")
        elif not end.ok and not end.stopped:
            say(f"[submit] attempt {attempt} failed after {seconds:.1f}s: {end.reason}")
            say("[submit] stopping all workers")
        stop_workers(workers, 1.0 if end.ok or end.reason == _STOPPED else spec.grace_period)
        for w in workers:
            w.check_heartbeat()  # the last one: the step where the worker stopped
        return AttemptResult(attempt, end.ok, end.reason, end.worker, seconds, ports,
                             [w.pid for w in workers], [w.first_step for w in workers],
                             [w.first_epoch for w in workers], [w.step for w in workers],
                             end.retriable, ns is not None, end.stopped)
    finally:
        say.end_progress()
        stop_workers(workers, spec.grace_period)  # no-op when already stopped; runs on Ctrl-C too
        if ns is not None:
            ns.close()


def _watch(spec: LocalJobSpec, workers: list[Worker], attempt: int, say: Printer, stop: StopRequest) -> None:
    """Poll the workers until the attempt ends; raises :class:`_AttemptEnded`."""
    t0 = time.monotonic()
    up_at: float | None = None
    last_status = t0
    announced: set[int] = set()
    forwarded_at: float | None = None  # when the stop request went to the workers
    summarized = False  # the progress line is showing
    while True:
        now = time.monotonic()
        if stop.signum and forwarded_at is None:
            if up_at is None:
                raise _AttemptEnded(False, f"{stop.name} before every worker was up", stopped=True)
            forwarded_at = now
            for w in workers:
                w.signal_group(stop.signum)
            say(f"[submit] {stop.name} received: the workers stop at the next step boundary and save a "
                "backup (again to stop now)")
        if stop.count > 1:
            raise _AttemptEnded(False, f"{stop.name} again", stopped=True)
        for w in workers:
            w.check_heartbeat()
            if w.index not in announced and (w.first_step is not None or w.first_epoch is not None):
                announced.add(w.index)
                where = [f"global step {w.first_step}" if w.first_step is not None else "",
                         f"epoch {w.first_epoch}" if w.first_epoch is not None else ""]
                say(f"[submit] attempt {attempt}: worker-{w.index} started training at "
                    f"{', '.join(x for x in where if x)}")
        codes = [w.poll() for w in workers]
        if forwarded_at is not None:
            _check_stopping(spec, workers, codes, now - forwarded_at, stop)
            time.sleep(spec.poll_interval)
            continue
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
        chief = workers[0]
        if spec.total_steps and chief.step is not None and not summarized:
            summarized = True  # from the chief's first heartbeat on: one line for the job
            say.start_progress(spec.total_steps, chief.step, spec.status_every)
        if summarized and chief.step is not None:
            say.progress(chief.step)
        elif now - last_status >= spec.status_every:
            last_status = now
            steps = ", ".join(f"worker-{w.index} " + ("done" if c == 0 else f"step {w.step}" if w.step
                                                      is not None else "running") for w, c in zip(
                workers, codes, strict=True))
            say(f"[submit] attempt {attempt}: {now - t0:.0f}s: {steps}")
        time.sleep(spec.poll_interval)


_STOPPED = "stopped at a step boundary"


def _check_stopping(spec: LocalJobSpec, workers: list[Worker], codes: list[int | None], since: float,
                    stop: StopRequest) -> None:
    """After the stop request: end the attempt when every worker has exited (the chief's 0: it finished
    anyway), or when one failed, did not take the request within the grace period, or stalled."""
    if all(code is not None for code in codes):
        for w in workers:
            w.join_output(2.0)
        if codes[0] == 0:
            raise _AttemptEnded(True, "worker-0 (chief) exited with code 0", stopped=True)
        raise _AttemptEnded(False, _STOPPED, stopped=True)
    expected = (0, 128 + stop.signum, 128 + signal.SIGINT)  # 130: stopped by a peer's request
    for w, code in zip(workers, codes, strict=True):
        if code is not None and code not in expected:
            raise _AttemptEnded(False, f"worker-{w.index} (pid {w.pid}) {w.describe_exit()} while stopping",
                                w.index, stopped=True)
        if code is None and not w.stopping and since > spec.grace_period:
            raise _AttemptEnded(False, f"worker-{w.index} (pid {w.pid}) did not take the stop request "
                                f"within {spec.grace_period:.0f}s", w.index, stopped=True)
        if code is None and w.silent_for() > spec.heartbeat_timeout:
            raise _AttemptEnded(False, f"worker-{w.index} (pid {w.pid}) stalled while stopping", w.index,
                                stopped=True)


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
