"""The training loop in Orbit's shape: a controller runs chunks of steps and calls actions.

:class:`Controller` owns the schedule only: it runs as many steps as it can in one call before the
next step at which some action is due, then calls the due actions in their order (a backup before
the evaluation of the same step: a job killed during an evaluation resumes from that backup and
evaluates again). Checkpoints, evaluations, heartbeats, the visit log and the export are
:class:`Action` s (:mod:`recsys.train.actions`, :mod:`recsys.train.end_actions`); a new loop feature
(warm start, distillation, learning-rate logging) is one more action. No TensorFlow here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


class Action:
    """Something the loop does besides training: at ``begin``, every ``every`` steps, at ``end``.

    ``every`` 0 means no periodic call. :meth:`due` may add steps of its own (it must then return
    True only at steps the controller stops at: multiples of some action's ``every``, the total
    and the end).
    """

    every: int = 0

    def begin(self, step: int) -> None:
        """Before the first chunk (``step``: the start, 0 or the restored step)."""

    def due(self, step: int, end: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def __call__(self, step: int, metrics: Any) -> None:
        """At a due step, with the train metrics of the chunk that ended there."""

    def end(self, step: int) -> None:
        """After the last chunk (``step``: where this process stopped)."""

    def halts(self) -> bool:
        """True when the run ends at the current step (early stopping); asked after ``begin`` and
        after the actions of every step."""
        return False


@dataclass
class LoopTimes:
    """Where the loop's time went: ``train_seconds`` in steps, ``loop_seconds`` in all of it."""

    train_seconds: float = 0.0
    loop_seconds: float = 0.0


class Controller:
    """Run ``run_chunk(n)`` (n steps; returns the train metrics) from ``start`` to ``end``."""

    def __init__(self, run_chunk: Callable[[int], Any], *, total: int, chunk: int,
                 actions: Sequence[Action], stop: Callable[[], bool] | None = None) -> None:
        self.run_chunk, self.total, self.chunk, self.actions = run_chunk, total, max(1, chunk), actions
        self.stop = stop  # asked after every chunk: True ends the run there (a Ctrl-C), state saved
        self.times = LoopTimes()

    def next_event(self, step: int) -> int:
        """The next step at which some action may be due (or the total)."""
        return min([self.total] + [(step // a.every + 1) * a.every for a in self.actions if a.every > 0])

    def _halted(self) -> bool:
        return any(a.halts() for a in self.actions)

    def run(self, start: int, end: int) -> int:
        """Train from ``start`` to ``end`` (<= total); returns the step reached."""
        loop_start = time.perf_counter()
        for a in self.actions:
            a.begin(start)
        step = start
        if self._halted():
            end = step  # a resumed run that had stopped early already: nothing more to train
        while step < end:
            n = min(self.chunk, self.next_event(step) - step, end - step)
            t0 = time.perf_counter()
            metrics = self.run_chunk(n)
            self.times.train_seconds += time.perf_counter() - t0
            step += n
            if step < end and self.stop is not None and self.stop():
                end = step  # the actions see the end here: the backup saves this step
            for a in self.actions:
                if a.due(step, end):
                    a(step, metrics)
            if self._halted():
                break
        self.times.loop_seconds = time.perf_counter() - loop_start  # steps and saves, not the export
        for a in self.actions:
            a.end(step)
        return step
