"""The loop's periodic actions: heartbeat, visit log, backup, evaluation (see :mod:`.controller`).

Each one is a small object with its own schedule and state, built by the trainer and testable alone.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from recsys.train import heartbeat
from recsys.train.controller import Action
from recsys.train.early_stopping import Stopper
from recsys.train.run_dir import RunDir


class Heartbeat(Action):
    """``<path>`` (the supervisor's liveness file) and a stderr line: at the start, every ``every``
    steps, before each evaluation and at the end. Without a path it only sets the chunk length."""

    def __init__(self, path: str = "", every: int = heartbeat.DEFAULT_EVERY) -> None:
        self.path, self.every = path, max(1, every)

    @classmethod
    def from_env(cls) -> Heartbeat:
        """As the supervisor asked (``RECSYS_HEARTBEAT_FILE``, ``RECSYS_HEARTBEAT_EVERY``)."""
        every = int(os.environ.get(heartbeat.HEARTBEAT_EVERY_ENV, "0") or 0) or heartbeat.DEFAULT_EVERY
        return cls(os.environ.get(heartbeat.HEARTBEAT_FILE_ENV, ""), every)

    def beat(self, step: int, phase: str) -> None:
        if self.path:
            heartbeat.write_heartbeat(self.path, step, phase)
            print(heartbeat.format_line(step, phase), file=sys.stderr, flush=True)

    def begin(self, step: int) -> None:
        self.beat(step, "begin")

    def __call__(self, step: int, metrics: Any) -> None:
        self.beat(step, "train")

    def end(self, step: int) -> None:
        self.beat(step, "end")


class VisitLog(Action):
    """``visits/worker-<i>.jsonl``: one line per (step, replica) with the example fingerprints, written
    from inside the train step through ``task.visit_writer``."""

    def __init__(self, run_dir: RunDir, task_index: int, task: Any) -> None:
        self.path, self.task = run_dir.visit_log(task_index), task
        self._fh: TextIO | None = None

    def begin(self, step: int) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (open for the run's life)
        self.task.visit_writer = self.write_step

    def write_step(self, step: Any, replica: Any, ids: Any) -> None:
        assert self._fh is not None
        self._fh.write(json.dumps({"step": int(step), "replica": int(replica),
                                   "ids": [int(x) for x in np.asarray(ids)]}) + "\n")
        self._fh.flush()

    def end(self, step: int) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class Saves(Action):
    """Save the training state every ``every`` steps, at every evaluation (``also``) and where this
    process stops; a non-chief worker's scratch copy is removed at the end."""

    def __init__(self, backup: Any, every: int, also: Callable[[int], bool]) -> None:
        self.backup, self.every, self.also = backup, every, also

    def due(self, step: int, end: int) -> bool:
        return super().due(step, end) or self.also(step) or step == end

    def __call__(self, step: int, metrics: Any) -> None:
        self.backup.save(step)

    def end(self, step: int) -> None:
        self.backup.cleanup()


@dataclass(frozen=True)
class Evaluated:
    """One evaluation: exact metrics over the eval split, its predictions and labels."""

    metrics: dict[str, Any]
    predictions: np.ndarray
    labels: np.ndarray


def metric_line(values: dict[str, Any]) -> str:
    return " - ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in values.items())


class Evaluation(Action):
    """Every ``every`` steps and at the last: train metrics (then reset), a kept checkpoint, the exact
    eval (and validation) metrics into ``history``, the eval file (chief), TensorBoard, a log line.

    ``evaluate(with_validation)`` returns the eval split's and (if any) the validation split's.
    ``begin`` redoes the evaluation of a restored step whose eval file is missing (killed during
    it); ``end`` at the last step evaluates once more when no evaluation ran here (resumed at the end).
    With a ``stopper`` (early stopping) the run halts where it says, and ``end`` puts the best
    evaluation's kept checkpoint into the evaluated model (``select(step)``: load and evaluate it).
    """

    def __init__(self, *, every: int, total: int,
                 evaluate: Callable[[bool], tuple[Evaluated, Evaluated | None]],
                 reset_metrics: Callable[[], None], local_metrics: Callable[[Any], dict[str, float]],
                 run_dir: RunDir, is_chief: bool, resumed: bool, examples_per_step: int,
                 keep: Any = None, writers: dict[str, Any] | None = None,
                 beat: Callable[[int, str], None] = lambda step, phase: None,
                 say: Callable[[str], None] = lambda line: None, stopper: Stopper | None = None,
                 select: Callable[[int], Evaluated] | None = None) -> None:
        self.every, self.total = every, total
        self._evaluate, self._reset, self._local = evaluate, reset_metrics, local_metrics
        self.run_dir, self.is_chief, self.resumed = run_dir, is_chief, resumed
        self.examples_per_step, self.keep, self.writers = examples_per_step, keep, writers or {}
        self.beat, self.say = beat, say
        self.history: dict[str, list[float]] = {}
        self.last: Evaluated | None = None
        self.last_step = 0  # the step whose evaluation ``last`` is
        self.validations: dict[int, dict[str, Any]] = {}  # this process's validation metrics by step
        self.stopper, self._select = stopper, select
        self._window = (time.perf_counter(), 0)

    def due(self, step: int, end: int) -> bool:
        return step % self.every == 0 or step == self.total

    def begin(self, step: int) -> None:
        self._window = (time.perf_counter(), step)
        if self.resumed and self.due(step, step) and not self.run_dir.has_eval(step):
            self.evaluate(step, {}, 0.0)
        if self.stopper is not None:
            self.stopper.begin(step, self.validations)

    def halts(self) -> bool:
        return self.stopper is not None and self.stopper.stopped

    def finished(self, step: int) -> bool:
        """Whether the run ends at ``step``: the total, or an early stop."""
        return step == self.total or self.halts()

    def __call__(self, step: int, metrics: Any) -> None:
        train_values = self._local(metrics)
        t0, s0 = self._window
        rate = (step - s0) * self.examples_per_step / max(time.perf_counter() - t0, 1e-9)
        self._reset()
        if self.keep is not None:
            self.keep.save(step)
        self.evaluate(step, train_values, rate)
        if self.stopper is not None:
            self.stopper.add(step, self.validations[step])
            d = self.stopper.decision
            if self.stopper.stopped and d is not None:
                self.say(f"early stopping at step {step}: validation {self.stopper.metric} has not improved "
                         f"on {d.best_value:.4f} (step {d.best_step}) for {d.since_best} evaluations")
        self._window = (time.perf_counter(), step)

    def evaluate(self, step: int, train_values: dict[str, float], rate: float) -> None:
        self.beat(step, "eval")
        ev, val = self._evaluate(True)
        if val is not None:
            self._append("holdout_", val.metrics)
            self.validations[step] = _floats(val.metrics)
        self.last, self.last_step = ev, step
        if self.is_chief:
            self.run_dir.write_eval(step, ev.predictions, ev.labels, ev.metrics,
                                    None if val is None else (val.predictions, val.labels),
                                    None if val is None else self.validations[step])
        for k, v in train_values.items():
            self.history.setdefault(k, []).append(v)
        self._append("val_", ev.metrics)
        if train_values:
            self.say(f"step {step}/{self.total} - {metric_line(train_values)} - {rate:,.0f} ex/s")
        self.say(f"eval at step {step}: {metric_line(ev.metrics)}")
        if self.writers:
            _write_summaries(self.writers["train"], step, train_values)
            _write_summaries(self.writers["validation"], step, ev.metrics)

    def _append(self, prefix: str, values: dict[str, Any]) -> None:
        for k, v in values.items():
            if k != "examples":
                self.history.setdefault(f"{prefix}{k}", []).append(float(v))

    def end(self, step: int) -> None:
        if self.finished(step) and self.last is None:  # the final evaluation was saved before a restart
            self.last, self.last_step = self._evaluate(False)[0], step
        d = self.stopper.decision if self.stopper is not None else None
        if self.finished(step) and d is not None and d.best_step != self.last_step:
            if self._select is None:
                raise RuntimeError("early stopping needs select() to restore the best checkpoint")
            self.last, self.last_step = self._select(d.best_step), d.best_step
            self.say(f"kept the best evaluation (step {d.best_step}, validation {d.best_value:.4f}): "
                     f"eval {metric_line(self.last.metrics)}")
        if self.keep is not None:
            self.keep.cleanup()


def _floats(values: dict[str, Any]) -> dict[str, Any]:
    """Metrics as JSON-exact Python numbers (what the eval file records and early stopping reads)."""
    return {k: float(v) if isinstance(v, (float, np.floating)) else v for k, v in values.items()}


def _write_summaries(writer: Any, step: int, values: dict[str, Any]) -> None:
    from recsys.compat import tf

    with writer.as_default(step=step):
        for k, v in values.items():
            if isinstance(v, float):
                tf.summary.scalar(f"epoch_{k}", v)
    writer.flush()
