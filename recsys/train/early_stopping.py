"""Early stopping on the validation split: a patience rule over the run's evaluation history.

The decision is a pure function of the validation metric at each evaluation (:func:`decide`), and the
history is what the run recorded (``evals/step-N.npz``, read back on a resume, plus this process's
own evaluations), so a killed run resumed stops at the same step and keeps the same weights. Every
worker of a cluster evaluates the same weights on the whole validation split, so every worker takes
the same decision without a collective. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from recsys.config.schema import TrainConfig
from recsys.train.run_dir import RunDir


@dataclass(frozen=True)
class Decision:
    """Where the rule stands after the evaluations so far."""

    best_step: int
    best_value: float
    since_best: int  # evaluations after the best one without an improvement
    stop: bool


def improves(value: float, best: float, metric: str, min_delta: float) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` (AUC up, logloss down)."""
    return value > best + min_delta if metric == "auc" else value < best - min_delta


def decide(history: Iterable[tuple[int, float]], *, metric: str, patience: int,
           min_delta: float = 0.0) -> Decision | None:
    """The patience rule over ``[(step, value)]`` in step order (None before any evaluation): stop at
    the ``patience``-th evaluation in a row that does not improve on the best (the earliest best wins)."""
    out: Decision | None = None
    for step, value in history:
        if out is None or improves(value, out.best_value, metric, min_delta):
            out = Decision(step, value, 0, False)
        else:
            since = out.since_best + 1
            out = Decision(out.best_step, out.best_value, since, patience > 0 and since >= patience)
        if out.stop:
            return out
    return out


class Stopper:
    """One process's early stopping: the recorded history, this run's evaluations, the decision."""

    def __init__(self, train: TrainConfig, run_dir: RunDir) -> None:
        self.metric, self.patience = train.early_stopping_metric, train.early_stopping_patience
        self.min_delta, self.total, self.run_dir = train.early_stopping_min_delta, train.steps, run_dir
        self.values: dict[int, float] = {}
        self.decision: Decision | None = None

    def begin(self, start: int, evaluated: dict[int, dict[str, Any]]) -> None:
        """The history up to ``start``: the recorded evaluations (files beyond it are from a save that
        could not be restored, and are redone), then the ones this process has made already."""
        for step, metrics in self.run_dir.load_validation_metrics():
            if step <= start:
                self.values[step] = self._value(step, metrics)
        for step, metrics in evaluated.items():
            self.values[step] = self._value(step, metrics)
        self._decide()

    def add(self, step: int, metrics: dict[str, Any]) -> None:
        self.values[step] = self._value(step, metrics)
        self._decide()

    def _value(self, step: int, metrics: dict[str, Any]) -> float:
        if self.metric not in metrics:
            raise ValueError(f"early stopping: the evaluation at step {step} has no validation "
                             f"{self.metric} (recorded: {sorted(metrics)})")
        return float(metrics[self.metric])

    def _decide(self) -> None:
        self.decision = decide(sorted(self.values.items()), metric=self.metric, patience=self.patience,
                               min_delta=self.min_delta)

    @property
    def stopped(self) -> bool:
        return self.decision is not None and self.decision.stop

    def summary(self, step: int) -> dict[str, Any]:
        """What the run record and the fingerprint say about it (``step``: where training ended)."""
        d = self.decision
        return {"metric": self.metric, "patience": self.patience, "min_delta": self.min_delta,
                "max_steps": self.total, "stopped_step": int(step),
                "best_step": None if d is None else int(d.best_step),
                "best_value": None if d is None else float(d.best_value),
                "evaluations": len(self.values), "hit_max": not self.stopped}
