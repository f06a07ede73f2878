"""The loop's progress line: step/total, steps/s, examples/s and the time left, on the chief's stderr.

On a terminal one line is rewritten in place about once a second; elsewhere (a log file, a worker
under ``recsys submit``) a plain line is printed every ``every_seconds`` (30 by default), so a long
job is never silent for long. It acts after any chunk of steps (no interval of its own: it never
changes where chunks end) and measures its rates from its own start, so a resumed job's ETA counts
only the steps left. ``recsys submit``'s supervisor shows the same line for the whole job, from
the chief's heartbeats (:meth:`Progress.show`), and leaves the chief's own lines (:data:`LINE`) in its log.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from pipelines.progress import duration as duration  # the one format; re-exported
from recsys.train.controller import Action

LINE = re.compile(r"^step [\d,]+/[\d,]+ \(\d+%\)")  # the start of every progress line


class Progress(Action):
    """Prints where training is (see the module docstring); ``clear()`` before printing another line."""

    def __init__(self, total: int, examples_per_step: int, stream: TextIO | None = None,
                 every_seconds: float | None = None, clock: Callable[[], float] = time.monotonic,
                 prefix: str = "") -> None:
        self.total, self.examples_per_step, self.clock, self.prefix = total, examples_per_step, clock, prefix
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_seconds = every_seconds if every_seconds is not None else (1.0 if self.tty else 30.0)
        self._start_step = self._start_time = self._last_print = 0.0
        self._open = False  # a terminal line is showing and not yet ended

    def due(self, step: int, end: int) -> bool:
        return True  # after every chunk; __call__ decides by the clock

    def begin(self, step: int) -> None:
        self._start_step, self._start_time = step, self.clock()
        self._last_print = self._start_time

    def __call__(self, step: int, metrics: Any) -> None:
        self.show(step)

    def show(self, step: int) -> bool:
        """Print the line for ``step`` if it is time to; True if it printed."""
        now = self.clock()
        if now - self._last_print < self.every_seconds:
            return False
        self._last_print = now
        self._show(self.prefix + self.line(step, now))
        return True

    def line(self, step: int, now: float) -> str:
        """``step 1,200/20,000 (6%) - 35.2 steps/s, 144,179 ex/s - 8m54s left``."""
        done, elapsed = step - self._start_step, max(now - self._start_time, 1e-9)
        rate = done / elapsed
        text = f"step {step:,}/{self.total:,} ({100 * step / max(self.total, 1):.0f}%)"
        if done > 0:
            left = (self.total - step) / rate
            examples = f", {rate * self.examples_per_step:,.0f} ex/s" if self.examples_per_step else ""
            text += f" - {rate:.3g} steps/s{examples} - {duration(left)} left"
        return text

    def _show(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r" + text + "\x1b[K")
            self._open = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """End a terminal line in progress, so the next line starts clean."""
        if self._open:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._open = False

    def end(self, step: int) -> None:
        self.clear()
