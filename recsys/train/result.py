"""What :func:`recsys.train.trainer.train` returns: the same fields on every path (a full run, a run
stopped early, a run found finished already)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsys.config.schema import Experiment
from recsys.train.run_dir import RunDir
from recsys.train.strategy import Role


@dataclass(frozen=True)
class TrainResult:
    """One process's outcome of ``train()``.

    ``eval``: exact metrics over the whole eval split at the last evaluation (the recorded ones when
    ``already_finished``; empty when stopped early before any). ``history``: ``{metric: [value per
    evaluation]}`` (train, ``val_`` and ``holdout_`` metrics) of this process. ``model``: a
    strategy-free copy of the trained model (None when ``already_finished``). ``fingerprint``: the
    run's fingerprint.json (None when stopped early). ``eval_history`` [(step, predictions)],
    ``eval_predictions`` and ``eval_labels`` (eval-split order) are filled with ``predict_eval`` (the
    history also with ``train.record_eval_predictions``), the validation ones when the run has a
    validation split.
    """

    model_dir: str
    config: Experiment
    role: Role
    stopped_at: int
    eval: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    model: Any = None
    train_seconds: float = 0.0  # in training steps
    loop_seconds: float = 0.0  # the whole loop: steps, backups, evaluations
    export_path: str | None = None
    fingerprint: dict[str, Any] | None = None
    already_finished: bool = False
    eval_history: list[tuple[int, np.ndarray]] = field(default_factory=list)
    eval_predictions: np.ndarray | None = None
    eval_labels: np.ndarray | None = None
    validation_history: list[tuple[int, np.ndarray]] = field(default_factory=list)
    validation_labels: np.ndarray | None = None
    # With early stopping (fingerprint's "early_stopping"): stopped_step, best_step (whose weights these
    # are), best_value, hit_max (the step maximum came before the patience ran out); None when off.
    early_stopping: dict[str, Any] | None = None

    @property
    def best_step(self) -> int:
        """The step whose weights the run kept: the best evaluation's with early stopping, else the end."""
        es = self.early_stopping
        return int(es["best_step"]) if es and es.get("best_step") is not None else self.stopped_at

    @property
    def finished(self) -> bool:
        """Whether the run ended (here or before): reached ``train.steps`` or stopped early."""
        return self.fingerprint is not None

    @property
    def weights_sha256(self) -> str | None:
        return None if self.fingerprint is None else self.fingerprint["weights_sha256"]


def already_finished(run_dir: RunDir, role: Role, config: Experiment) -> TrainResult:
    """The result of a start into a finished run of the same config: its recorded fingerprint."""
    fp = run_dir.read_fingerprint()
    if fp is None:
        raise FileNotFoundError(f"{run_dir.root} is recorded as finished but has no readable "
                           f"{run_dir.fingerprint_file}; --overwrite starts over")
    return TrainResult(model_dir=run_dir.root, config=config, role=role, stopped_at=int(fp["final_step"]),
                       eval=fp.get("eval", {}), export_path=fp.get("export_path"), fingerprint=fp,
                       already_finished=True, early_stopping=fp.get("early_stopping"))
