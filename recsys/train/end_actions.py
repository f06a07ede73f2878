"""The actions at the end of a finished run, in order: the eval-prediction record, the fingerprint,
the export (chief), the run record (chief). Each does nothing when this process stopped early."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from recsys.repro import environment
from recsys.train import fingerprint, run_state
from recsys.train.actions import Evaluation
from recsys.train.controller import Action
from recsys.train.run_dir import RunDir


class EvalPredictions(Action):
    """Every evaluation's predictions [(step, predictions)] (and the validation ones) for the result;
    with ``record`` also ``eval_predictions.npz`` (chief)."""

    def __init__(self, evaluation: Evaluation, run_dir: RunDir, *, is_chief: bool, record: bool) -> None:
        self.evaluation, self.run_dir, self.is_chief, self.record = evaluation, run_dir, is_chief, record
        self.history: list[tuple[int, np.ndarray]] = []
        self.validation_history: list[tuple[int, np.ndarray]] = []
        self.validation_labels: np.ndarray | None = None

    def end(self, step: int) -> None:
        last, at = self.evaluation.last, self.evaluation.last_step
        if not self.evaluation.finished(step) or last is None:
            return
        history = [(s, p) for s, p, _, _ in self.run_dir.load_evals() if s <= step] if self.is_chief else []
        if at not in {s for s, _ in history}:
            history = sorted([*history, (at, last.predictions)], key=lambda x: x[0])
        self.history = history
        if self.is_chief:
            self.validation_history, self.validation_labels = self.run_dir.load_validation()
            self.validation_history = [(s, p) for s, p in self.validation_history if s <= step]
        if self.is_chief and self.record:
            arrays: dict[str, Any] = {"steps": np.array([s for s, _ in history], np.int64),
                                      "predictions": np.stack([p for _, p in history]),
                                      "labels": last.labels}
            if self.validation_history:
                arrays.update(val_steps=np.array([s for s, _ in self.validation_history], np.int64),
                              val_predictions=np.stack([p for _, p in self.validation_history]),
                              val_labels=self.validation_labels)
            self.run_dir.write_eval_predictions(arrays)


class Fingerprint(Action):
    """``fingerprint.json`` (chief writes it; every worker gets it in its result): the weights digest,
    the final step, the resolved config and its digest, the data identity (with the stream-order
    version), the libraries, the code version, the devices and op determinism, the worker count and
    the collective (:func:`recsys.repro.environment.environment`), the resumes, the caveats, the
    parents (``parent``, ``teacher``): what ``recsys reproduce`` rebuilds the model from."""

    def __init__(self, run_dir: RunDir, *, total: int, weights: Any, ident: run_state.RunIdentity,
                 state: run_state.RunState | None, evaluation: Evaluation, num_workers: int,
                 caveats: list[str], is_chief: bool) -> None:
        self.run_dir, self.total, self.weights, self.ident, self.state = run_dir, total, weights, ident, state
        self.evaluation, self.num_workers, self.caveats, self.is_chief = evaluation, num_workers, caveats, \
            is_chief
        self.fp: dict[str, Any] | None = None

    def end(self, step: int) -> None:
        if not self.evaluation.finished(step) or self.evaluation.last is None:
            return
        self.fp = {
            "weights_sha256": fingerprint.weights_digest(self.weights()),
            "final_step": int(step),
            "config_sha256": self.ident.config_sha256,
            "config": self.ident.config,
            "data": self.ident.data,
            "libraries": fingerprint.library_versions(),
            **environment.environment(self.ident.config, self.num_workers),
            "resumes": self.state.resumes if self.state else [],
            "bitwise_caveats": self.caveats,
            "eval": self.evaluation.last.metrics,
            "export_path": None,
        }
        if self.evaluation.stopper is not None:  # the weights are the best evaluation's, not final_step's
            self.fp["early_stopping"] = self.evaluation.stopper.summary(step)
        # Lineage (recsys.repro.lineage): the warm-start parent and the distillation teacher, as the run
        # record has them from its start (a resume does not read the parent again).
        lineage = (self.state.lineage if self.state and self.state.lineage else self.ident.lineage)
        self.fp["parent"] = lineage.get("parent")
        self.fp["teacher"] = lineage.get("teacher")
        if self.is_chief:
            self.run_dir.write_fingerprint(self.fp)


class Export(Action):
    """The SavedModel (chief, when enabled) with the resolved config and the fingerprint as assets;
    the fingerprint then names the export."""

    def __init__(self, run_dir: RunDir, fp: Fingerprint, export: Any, base_dir: str | None) -> None:
        self.run_dir, self.fingerprint, self._export = run_dir, fp, export
        self.base_dir = base_dir or run_dir.export
        self.path: str | None = None

    def end(self, step: int) -> None:
        fp = self.fingerprint.fp
        if fp is None:
            return
        extra = {os.path.basename(p): p for p in (self.run_dir.config_file, self.run_dir.fingerprint_file)}
        self.path = self._export(self.base_dir, extra)
        fp["export_path"] = self.path
        self.run_dir.write_fingerprint(fp)


class RunRecord(Action):
    """Mark the run finished in ``train_state.json`` (chief), after its fingerprint and export."""

    def __init__(self, run_dir: RunDir, state: run_state.RunState, fp: Fingerprint) -> None:
        self.run_dir, self.state, self.fingerprint = run_dir, state, fp

    def end(self, step: int) -> None:
        fp = self.fingerprint.fp
        if fp is None:
            return
        self.state.finished, self.state.final_step, self.state.weights_sha256 = True, int(step), \
            fp["weights_sha256"]
        self.state.early_stopping = fp.get("early_stopping", {})
        run_state.save(self.run_dir.root, self.state)
