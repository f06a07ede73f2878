"""One supervised worker process: its own process group, its output streamed with a prefix and to a file.

stderr is merged into that output unless ``stderr_path`` keeps it apart. A reader thread turns the
output into lines (``\\n`` or ``\\r``, so Keras progress bars count too), and records when the worker
last showed a sign of life, whether it has come up, and its last lines.
"""

from __future__ import annotations

import collections
import ctypes
import functools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO

from recsys.launch.placement import pin
from recsys.train import heartbeat

# Lines that show a worker has joined the cluster / is training (any heartbeat shows it too).
READY_PATTERN = re.compile(
    r"MultiWorkerMirroredStrategy with cluster_spec|^Epoch \d+/\d+|" + re.escape(heartbeat.LINE_PREFIX))
_EPOCH = re.compile(r"^Epoch (\d+)/(\d+)")
_PR_SET_PDEATHSIG = 1


def _libc_prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up in the parent (no dlopen between fork and exec); None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _libc_prctl()


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL me if the submitter dies (Linux), so no worker is orphaned."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _child_setup(cpus: frozenset[int], enter: Callable[[], None] | None) -> None:
    """In the child before exec: die with the submitter, join the job's network namespace (if any),
    run on the worker's CPUs."""
    _die_with_parent()
    if enter is not None:
        enter()
    pin(cpus)


class Worker:
    """A started worker: ``poll()`` its exit code, ``stop()`` it, read its liveness fields."""

    def __init__(self, index: int, argv: Sequence[str], env: Mapping[str, str], log_path: str,
                 echo: Callable[[str], None] | None = None, heartbeat_file: str = "",
                 cwd: str | None = None, stderr_path: str | None = None,
                 cpus: frozenset[int] = frozenset(), enter: Callable[[], None] | None = None) -> None:
        self.index, self.argv, self.log_path = index, list(argv), log_path
        self.cpus = cpus
        self.heartbeat_file = heartbeat_file
        self.name = f"worker-{index}"
        self.started = time.monotonic()
        self.last_life = self.started  # last output line or heartbeat
        self.output_seen = False
        self.ready = False
        self.step: int | None = None  # last global step from a heartbeat
        self.first_step: int | None = None  # the step the worker started (or resumed) at
        self.first_epoch: int | None = None  # the first "Epoch k/N" Keras printed in this attempt
        self.stopping = False  # it took a stop request: it stops at the next step boundary
        self.tail: collections.deque[str] = collections.deque(maxlen=25)
        self._hb_mtime = 0.0
        self._echo = echo
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 (closed by the reader thread)
        # stderr goes into the same stream unless it is kept apart in its own file.
        err: IO[bytes] | int = open(stderr_path, "ab") if stderr_path else subprocess.STDOUT  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=err,
                                         start_new_session=True,
                                         preexec_fn=functools.partial(_child_setup, cpus, enter))
        except OSError:
            self._log.close()
            raise
        finally:
            if not isinstance(err, int):
                err.close()  # the child holds its own copy
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read, name=f"{self.name}-reader", daemon=True)
        self._reader.start()

    # -- output -------------------------------------------------------------------------------------
    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        pending = b""
        try:
            while chunk := os.read(fd, 65536):
                self._log.write(chunk)
                self._log.flush()
                pending += chunk
                *lines, pending = re.split(rb"\r\n|\n|\r", pending)
                for raw in lines:
                    self._line(raw.decode("utf-8", "replace"))
            if pending:
                self._line(pending.decode("utf-8", "replace"))
        finally:
            self._log.close()
            self.proc.stdout.close()

    def _line(self, line: str) -> None:
        text = line.replace("\b", "").rstrip()  # Keras progress bars erase with backspaces
        self.last_life = time.monotonic()
        self.output_seen = True
        if not text:
            return
        beat = heartbeat.parse_line(text)
        if beat is not None:
            self._set_step(beat[0])
        else:  # the last lines quoted in a failure: what the worker said, not its step count
            self.tail.append(text)
        if READY_PATTERN.search(text):
            self.ready = True
        if heartbeat.STOPPING in text:
            self.stopping = True
        match = _EPOCH.match(text)
        if match and self.first_epoch is None:
            self.first_epoch = int(match.group(1))
        if self._echo is not None:
            self._echo(f"[{self.name}] {text}")

    def _set_step(self, step: int) -> None:
        self.ready = True
        if self.first_step is None:
            self.first_step = step
        self.step = step

    # -- liveness -----------------------------------------------------------------------------------
    def check_heartbeat(self) -> None:
        """Count a rewritten heartbeat file as a sign of life (and readiness)."""
        if not self.heartbeat_file:
            return
        try:
            mtime = os.stat(self.heartbeat_file).st_mtime
        except OSError:
            return
        if mtime != self._hb_mtime:
            self._hb_mtime = mtime
            beat = heartbeat.read_heartbeat(self.heartbeat_file)
            if beat is not None:  # the file is removed before each attempt, so it is this worker's
                self.last_life = time.monotonic()
                self._set_step(beat.step)

    def silent_for(self) -> float:
        """Seconds since the last sign of life."""
        return time.monotonic() - self.last_life

    def poll(self) -> int | None:
        return self.proc.poll()

    def describe_exit(self) -> str:
        """``exited with code 3`` / ``was killed by SIGKILL``, and ``at step 120`` when it reported one."""
        code = self.proc.returncode
        at = f" at step {self.step}" if self.step is not None else ""
        if code is None:
            return "is still running"
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}{at}"
            except ValueError:
                return f"was killed by signal {-code}{at}"
        return f"exited with code {code}{at}"

    def last_lines(self, n: int = 8) -> str:
        lines = list(self.tail)[-n:]
        return "\n".join(f"    | {line[:300]}" for line in lines) if lines else "    | (no output)"

    # -- stopping -----------------------------------------------------------------------------------
    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the worker's process group (the worker and anything it started)."""
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def join_output(self, timeout: float = 5.0) -> None:
        """Wait for the reader thread to drain the output after the process has ended."""
        self._reader.join(timeout)


def stop_workers(workers: Sequence[Worker], grace: float) -> None:
    """SIGTERM every worker's group, wait up to ``grace`` s, then SIGKILL (TensorFlow traps SIGTERM)."""
    for w in workers:
        w.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for w in workers:
        try:
            w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for w in workers:
        w.signal_group(signal.SIGKILL)  # also reaps anything left in the group
        w.proc.wait()
        w.join_output()
