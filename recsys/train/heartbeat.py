"""Worker heartbeats: a Keras callback that rewrites a small JSON file every N steps, and its reader.

The supervisor names the file in ``RECSYS_HEARTBEAT_FILE``; a fresh file says "alive and training",
and its ``step`` (the global step, restored from the backup) shows where a restarted
job resumed. Importing this module does not import TensorFlow; :func:`heartbeat_callback` does.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelines import atomic

HEARTBEAT_FILE_ENV = "RECSYS_HEARTBEAT_FILE"
HEARTBEAT_EVERY_ENV = "RECSYS_HEARTBEAT_EVERY"
# Set by the supervisor (recsys/launch/local.py) on every worker it starts: the attempt number.
LAUNCH_ATTEMPT_ENV = "RECSYS_LAUNCH_ATTEMPT"
DEFAULT_EVERY = 10
# Printed by the callback (and parsed by the supervisor): "recsys-heartbeat step=120 phase=train".
LINE_PREFIX = "recsys-heartbeat"
# In the line a worker prints when a stop signal reaches it: the supervisor reads it as "stopping at
# a step boundary, give it time" (a worker that never prints it is stopped after the grace period).
STOPPING = "stopping at the next step boundary"


@dataclass(frozen=True)
class Heartbeat:
    """One heartbeat: global step, wall time, phase ("begin", "train", "end") and the writer's pid."""

    step: int
    time: float
    phase: str
    pid: int


def write_heartbeat(path: str, step: int, phase: str = "train") -> Heartbeat:
    """Atomically replace ``path`` with a heartbeat (readers never see a half-written file)."""
    beat = Heartbeat(int(step), time.time(), phase, os.getpid())
    atomic.write_json(path, beat.__dict__, indent=None, durable=False)  # liveness, not state
    return beat


def read_heartbeat(path: str) -> Heartbeat | None:
    """The last heartbeat in ``path``, or None when there is none (yet) or it is unreadable."""
    try:
        with open(path) as fh:
            d = json.load(fh)
        return Heartbeat(int(d["step"]), float(d["time"]), str(d["phase"]), int(d["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def format_line(step: int, phase: str) -> str:
    """The line the callback prints, e.g. ``recsys-heartbeat step=120 phase=train``."""
    return f"{LINE_PREFIX} step={step} phase={phase}"


def parse_line(line: str) -> tuple[int, str] | None:
    """(step, phase) from a line printed by the callback, else None."""
    if not line.startswith(LINE_PREFIX + " "):
        return None
    fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
    try:
        return int(fields["step"]), fields.get("phase", "train")
    except (KeyError, ValueError):
        return None


def heartbeat_callback(environ: Mapping[str, str] | None = None, every: int | None = None) -> Any:
    """A Keras callback writing heartbeats to ``$RECSYS_HEARTBEAT_FILE``; None when the variable is unset.

    Append it after ``BackupAndRestore`` in the callback list, so its ``on_train_begin`` reports the
    restored step. ``every`` (default ``$RECSYS_HEARTBEAT_EVERY`` or 10) counts calls of
    ``on_train_batch_end``, i.e. executions of ``steps_per_execution`` steps.
    """
    env = os.environ if environ is None else environ
    path = env.get(HEARTBEAT_FILE_ENV, "")
    if not path:
        return None
    interval = every or int(env.get(HEARTBEAT_EVERY_ENV, DEFAULT_EVERY) or DEFAULT_EVERY)
    from recsys.compat import keras

    class HeartbeatCallback(keras.callbacks.Callback):
        """Writes (and prints) the global step at train begin, every ``every`` batches and at the end."""

        def __init__(self) -> None:
            super().__init__()
            self.path, self.every, self._calls = path, max(1, interval), 0

        def _beat(self, phase: str) -> None:
            step = int(self.model.optimizer.iterations.numpy())
            write_heartbeat(self.path, step, phase)
            print(format_line(step, phase), file=sys.stderr, flush=True)

        def on_train_begin(self, logs: dict | None = None) -> None:
            self._beat("begin")

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self._calls += 1
            if self._calls % self.every == 0:
                self._beat("train")

        def on_train_end(self, logs: dict | None = None) -> None:
            self._beat("end")

    return HeartbeatCallback()
