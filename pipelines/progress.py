"""Preprocessing's progress lines, so a short run prints none and a long one is never silent for long:
within a chunk when no line came for ``every`` seconds, and for the job after a chunk when its last
job line is ``every`` seconds old.

The counts are this process's: exact with the default DirectRunner (in_memory, one worker), one
worker's share elsewhere (each worker process reports its own chunks and rate). Also the one
``duration`` format (``2h05m``, ``8m54s``, ``42s``) that the trainer's progress line uses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def duration(seconds: float) -> str:
    """``2h05m``, ``8m54s``, ``42s``."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class ChunkProgress:
    """Logs ``chunk 3/10: 150,000 of 300,000 lines (50%), 25,000 rows/s`` within a chunk and
    ``preprocess: 3/10 chunks done (30%), 24,800 rows/s, ~4m43s left`` after one, when due."""

    def __init__(self, total_chunks: int, every: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.every, self.clock = total_chunks, every, clock
        self.done = self.rows = 0
        self.started: float | None = None  # the first chunk's start in this process
        self._last_line = self._last_job = 0.0  # the last line of any kind / job line (or the start)

    def start_chunk(self) -> float:
        """Call when a chunk starts; returns its start time (for :meth:`in_chunk`)."""
        now = self.clock()
        if self.started is None:
            self.started = self._last_line = self._last_job = now
        return now

    def in_chunk(self, number: int, lines_done: int, lines: int, chunk_start: float) -> None:
        """After a batch of a chunk (``number``: 1-based)."""
        now = self.clock()
        if now - self._last_line >= self.every:
            self._last_line = now
            rate = lines_done / max(now - chunk_start, 1e-9)
            log.info("chunk %d/%d: %s of %s lines (%d%%), %s rows/s", number, self.total, f"{lines_done:,}",
                     f"{lines:,}", 100 * lines_done // max(lines, 1), f"{rate:,.0f}")

    def chunk_done(self, rows: int) -> None:
        """After a chunk of ``rows`` rows; the job line when one is due and chunks remain."""
        self.done, self.rows = self.done + 1, self.rows + rows
        now = self.clock()
        if self.done < self.total and self.started is not None and now - self._last_job >= self.every:
            self._last_line = self._last_job = now
            elapsed = max(now - self.started, 1e-9)
            left = elapsed / self.done * (self.total - self.done)
            log.info("preprocess: %d/%d chunks done (%d%%), %s rows/s, ~%s left", self.done, self.total,
                     100 * self.done // self.total, f"{self.rows / elapsed:,.0f}", duration(left))
