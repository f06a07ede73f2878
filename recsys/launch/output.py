"""What the supervisor prints: its own lines, the workers' lines and one progress line for the job.

The workers' output is echoed as ``[worker-i] ...`` lines, but for the lines that only repeat what the
progress line says: their heartbeats (one line per worker every few steps: thousands in a long job),
the chief's own progress lines and the stop acknowledgements. ``--stream_heartbeats`` (or ``recsys
-v``) echoes those too. The progress line (step/total, steps/s, time left: the trainer's
:class:`~recsys.train.progress.Progress`) is rewritten in place on a terminal and printed every
``--status_every`` seconds elsewhere; every other line clears it first.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Callable

from recsys.train import heartbeat
from recsys.train.progress import LINE, Progress


def is_repeat(text: str) -> bool:
    """Whether a worker's output line only repeats what the supervisor's progress line shows."""
    return bool(heartbeat.parse_line(text) or LINE.match(text) or heartbeat.STOPPING in text)


class Printer:
    """Thread-safe line output shared by the supervisor and the workers' reader threads, with the
    job's progress line (on a terminal one line rewritten in place; cleared before any other line)."""

    def __init__(self, write: Callable[[str], object] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._write, self._clock = write, clock
        self._progress: Progress | None = None

    def __call__(self, line: str) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.clear()
            if self._write is not None:
                self._write(line + "\n")
            else:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()

    def worker_echo(self, everything: bool) -> Callable[[str], None]:
        """The echo for ``[worker-i] text`` lines: all of them, or all but :func:`is_repeat`'s."""
        if everything:
            return self

        def echo(line: str) -> None:
            if not is_repeat(line.split("] ", 1)[-1]):
                self(line)

        return echo

    def start_progress(self, total: int, step: int, every_seconds: float) -> None:
        """A progress line for a job of ``total`` steps that (re)starts at ``step``: on a terminal
        refreshed every second, elsewhere a line every ``every_seconds``."""
        tty = self._write is None and sys.stdout.isatty()
        with self._lock:
            self._progress = Progress(total, 0, sys.stdout if self._write is None else _Stream(self._write),
                                      every_seconds=1.0 if tty else every_seconds, clock=self._clock,
                                      prefix="[submit] ")
            self._progress.begin(step)

    def progress(self, step: int) -> bool:
        """Show the progress line at ``step`` if it is time to; False without a progress line."""
        with self._lock:
            if self._progress is None:
                return False
            self._progress.show(step)
            return True

    def end_progress(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.clear()
            self._progress = None


class _Stream(io.StringIO):
    """A write function as the text stream :class:`Progress` writes to (never a terminal)."""

    def __init__(self, write: Callable[[str], object]) -> None:
        super().__init__()
        self._to = write

    def write(self, text: str) -> int:
        self._to(text)
        return len(text)
