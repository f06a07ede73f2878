"""A local job: what to run (:class:`LocalJobSpec`), what each attempt and the job gave, the stop
request, and ``<log_dir>/status.json``, the record of what really happened (state, steps done, the
backup's step, the export)."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from pipelines import atomic
from recsys.launch.placement import DEFAULT_PIN_CPUS, DEFAULT_THREADS
from recsys.train.run_dir import STATUS_FILE, RunDir


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
    stream_heartbeats: bool = False  # echo the heartbeat and progress lines too (recsys.launch.output)
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    backup_dir: str = ""  # reported at each restart when it holds state to resume from
    model_dir: str = ""  # the trainer's: its fingerprint.json gives the export path and digests
    pin_cpus: bool = DEFAULT_PIN_CPUS  # worker i on its own slice of the CPUs (recsys.launch.placement)
    threads_per_worker: int = DEFAULT_THREADS  # TensorFlow intra-/inter-op threads; 0: TF's default
    isolate_network: bool = True  # each attempt's workers in a private network namespace (netns)
    total_steps: int = 0  # the config's train.steps, for the messages (0: unknown)


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
    stopped: bool = False  # ended by a stop request


@dataclass
class JobResult:
    """The job: success, attempts, total seconds, the chief's export path and a one-line message.

    ``state`` is "succeeded", "failed" or "stopped" (a stop request); ``steps_done`` the chief's last
    global step and ``backup_step`` the step the backup holds (where a rerun resumes)."""

    ok: bool
    message: str
    seconds: float
    attempts: list[AttemptResult]
    export_path: str | None = None
    fingerprint: dict | None = None
    state: str = ""
    steps_done: int | None = None
    backup_step: int | None = None


class StopRequest:
    """The submitter's stop signals, set from its signal handler (which must not print or block): the
    first asks the workers to stop at a step boundary, a second stops them at once."""

    def __init__(self) -> None:
        self.signum = 0
        self.count = 0

    def request(self, signum: int) -> None:
        self.count += 1
        self.signum = self.signum or signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


def job_result(spec: LocalJobSpec, attempts: list[AttemptResult], seconds: float,
               stop: StopRequest) -> JobResult:
    """What the attempts add up to: succeeded (the chief's export), stopped (where, and the backup's
    step) or failed (why)."""
    last = attempts[-1] if attempts else None
    steps_done = _chief_step(last)
    backup_step = RunDir(spec.model_dir).backup_step() if spec.model_dir else None
    if last is not None and last.ok:
        fp = fingerprint(spec.model_dir)
        export = fp.get("export_path") if fp else None
        digest = f"; weights sha256 {fp['weights_sha256'][:16]}..." if fp else ""
        message = (f"job succeeded in {seconds:.1f}s after {len(attempts)} attempt(s){digest}"
                   f"{f'; export: {export}' if export else ''}")
        return JobResult(True, message, seconds, attempts, export, fp, "succeeded", steps_done, backup_step)
    if stop.signum:
        of = f" of {spec.total_steps}" if spec.total_steps else ""
        at = f"stopped at step {steps_done}{of}" if steps_done is not None else "stopped before training"
        saved = f"backup at step {backup_step}" if backup_step is not None else "no backup yet (a rerun " \
            "starts from step 0)"
        return JobResult(False, f"{at} ({stop.name}); {saved}", seconds, attempts, None, None, "stopped",
                         steps_done, backup_step)
    assert last is not None
    why = "not retriable" if not last.retriable else f"backoff limit {spec.backoff_limit} reached"
    message = f"job failed after {len(attempts)} attempt(s) in {seconds:.1f}s ({why}): {last.reason}"
    return JobResult(False, message, seconds, attempts, None, None, "failed", steps_done, backup_step)


def _chief_step(attempt: AttemptResult | None) -> int | None:
    """The chief's last global step in ``attempt`` (None: it never reported one)."""
    return attempt.last_steps[0] if attempt is not None and attempt.last_steps else None


def fingerprint(model_dir: str) -> dict | None:
    """The trainer's fingerprint.json (export path, weights digest, resumes), or None."""
    return RunDir(model_dir).read_fingerprint() if model_dir else None


def write_status(spec: LocalJobSpec, attempts: list[AttemptResult], result: JobResult | None,
                 seconds: float) -> None:
    """``<log_dir>/status.json``: the machine-readable record of the job (tests and scripts read it).

    Without a result (the supervisor itself was interrupted) the model_dir still says what happened:
    the backup's step, and the export of a run that finished."""
    if result is None:
        fp = fingerprint(spec.model_dir)
        finished = bool(fp and spec.total_steps and fp.get("final_step") == spec.total_steps)
        last = _chief_step(attempts[-1] if attempts else None)
        result = JobResult(finished, "interrupted", seconds, attempts,
                           fp.get("export_path") if fp and finished else None, fp if finished else None,
                           "succeeded" if finished else "interrupted", last,
                           RunDir(spec.model_dir).backup_step() if spec.model_dir else None)
    status = {"ok": result.ok, "state": result.state, "message": result.message,
              "seconds": round(seconds, 2), "steps_done": result.steps_done,
              "total_steps": spec.total_steps or None, "backup_step": result.backup_step,
              "export_path": result.export_path, "fingerprint": result.fingerprint,
              "num_workers": spec.num_workers, "attempts": [asdict(a) for a in attempts]}
    atomic.write_json(os.path.join(spec.log_dir, STATUS_FILE), status)
