"""Train a ranking model from an :class:`Experiment`: data, strategy, fit, evaluate, export.

``train(config, model_dir)`` is the Python API under ``recsys train``; a study can call it many times
in one process (single-process strategy) and ask for the eval predictions.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np

import pipelines.feature_spec as feature_spec
from recsys.compat import keras
from recsys.config import loading
from recsys.config.schema import Experiment, TrainConfig
from recsys.data.input import make_dataset
from recsys.export.saved_model import clone_for_export, export_saved_model
from recsys.export.warmup import raw_batch
from recsys.launch.heartbeat import heartbeat_callback
from recsys.models.activation import validate_activation
from recsys.models.ranking import RankingModel
from recsys.train.determinism import apply_determinism, perturb_weights
from recsys.train.evaluate import metrics as eval_metrics
from recsys.train.evaluate import predict_with_labels
from recsys.train.strategy import Role, make_strategy

EVAL_PREDICTIONS = "eval_predictions.npz"


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """The optimizer named in the config."""
    makers = {"adam": keras.optimizers.Adam, "adagrad": keras.optimizers.Adagrad, "sgd": keras.optimizers.SGD}
    if config.optimizer not in makers:
        raise ValueError(f"train.optimizer must be one of {sorted(makers)}, got {config.optimizer!r}")
    return makers[config.optimizer](learning_rate=config.learning_rate)


def check_config(config: Experiment) -> feature_spec.FeatureSpec:
    """Fail early with a clear message: spec location, activations, sizes. Returns the spec."""
    if not config.data.spec_dir:
        raise ValueError("data.spec_dir is not set (the directory written by `recsys preprocess`)")
    spec = feature_spec.load(config.data.spec_dir)
    m = config.model
    for key, value in (
        ("model.activation", m.activation),
        ("model.bottom_activation", m.bottom_activation),
        ("model.top_activation", m.top_activation),
    ):
        if value is not None:
            try:
                validate_activation(value)
            except (ValueError, TypeError) as err:
                raise ValueError(f"{key}={value!r}: {err}") from err
    for key, value in (
        ("train.steps", config.train.steps),
        ("data.batch_size", config.data.batch_size),
        ("data.eval_batch_size", config.data.eval_batch_size),
    ):
        if value < 1:
            raise ValueError(f"{key} must be >= 1, got {value}")
    return spec


class PeriodicEval(keras.callbacks.Callback):
    """At each epoch end: copy the weights into a strategy-free model and evaluate the whole eval
    split in this process; adds ``val_*`` to the logs (for History and TensorBoard)."""

    def __init__(self, plain: RankingModel, eval_ds, verbose: int, steps_per_epoch: int = 0,
                 total_steps: int = 0, record: bool = False):
        super().__init__()
        self.plain, self.eval_ds, self.verbose = plain, eval_ds, verbose
        self.steps_per_epoch, self.total_steps, self.record = steps_per_epoch, total_steps, record
        self.last: dict[str, float] = {}
        self.history: list[tuple[int, np.ndarray]] = []  # (global step, eval predictions) if record
        self.labels: np.ndarray | None = None

    def on_epoch_end(self, epoch, logs=None):
        self.plain.set_weights(self.model.get_weights())  # a collective: every worker runs it
        preds, self.labels = predict_with_labels(self.plain, self.eval_ds)
        self.last = eval_metrics(self.labels, preds)
        if self.record:
            self.history.append((min((epoch + 1) * self.steps_per_epoch, self.total_steps), preds))
        if logs is not None:
            logs.update({f"val_{k}": v for k, v in self.last.items() if k != "examples"})
        if self.verbose:
            print(
                f"eval after epoch {epoch + 1}: "
                + " - ".join(
                    f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in self.last.items()
                ),
                flush=True,
            )


def _callbacks(config: Experiment, model_dir: str, role: Role, evaluator: PeriodicEval) -> list:
    cbs: list = [keras.callbacks.BackupAndRestore(os.path.join(model_dir, "backup")), evaluator]
    beat = heartbeat_callback()  # None unless RECSYS_HEARTBEAT_FILE is set (recsys submit sets it)
    if beat is not None:
        cbs.append(beat)  # after BackupAndRestore, so its train-begin beat reports the restored step
    if config.train.checkpoint:
        path = os.path.join(model_dir, "checkpoints", "ckpt-{epoch:04d}")
        cbs.append(keras.callbacks.ModelCheckpoint(path, save_weights_only=True))
    if config.train.tensorboard and role.is_chief:  # only the chief writes summaries
        cbs.append(
            keras.callbacks.TensorBoard(os.path.join(model_dir, "logs"), write_graph=False, profile_batch=0)
        )
    return cbs


def _warmup_requests(spec, n: int) -> list[dict[str, np.ndarray]]:
    if n <= 0:
        return []
    ds = make_dataset(spec, "eval", 2, training=False)  # n requests of two rows each
    return [raw_batch(features, spec) for features, _ in ds.take(n)]


def train(
    config: Experiment,
    model_dir: str,
    *,
    predict_eval: bool = False,
    callbacks: list | None = None,
    model_hook=None,
    export: bool | None = None,
) -> dict[str, Any]:
    """Train, evaluate and (chief only) export. Returns a dict with:

    ``eval`` (loss/auc/logloss/calibration/examples, exact, over the whole eval split),
    ``history`` (Keras history), ``export_path`` (None unless exported here), ``model`` (a
    strategy-free copy of the trained model), ``role``, ``train_seconds``, and with
    ``predict_eval`` also ``eval_predictions`` and ``eval_labels`` (NumPy, eval-split order).
    """
    strategy, role = make_strategy(config.determinism.collective)  # before any other TF op
    spec = check_config(config)
    apply_determinism(config.determinism)
    os.makedirs(model_dir, exist_ok=True)
    if role.is_chief:
        loading.save(config, model_dir)
    d, t = config.data, config.train
    train_ds = make_dataset(
        spec,
        "train",
        d.batch_size,
        training=True,
        shuffle_buffer=d.shuffle_buffer,
        seed=config.determinism.data_seed,
        cache=d.cache,
        num_workers=role.num_workers,
        min_files_per_worker=d.min_files_per_worker,
    )
    eval_ds = make_dataset(spec, "eval", d.eval_batch_size, training=False, max_examples=d.eval_examples)
    with strategy.scope():
        model = RankingModel(
            spec,
            config.model,
            train_metrics=t.train_metrics,
            dense_grad_max_elements=t.dense_grad_max_elements,
        )
        model.build_from_spec()  # BackupAndRestore needs a built model
        if config.determinism.weight_noise > 0:  # the study's "numerical noise" source
            perturb_weights(model, config.determinism.weight_noise, config.determinism.weight_noise_seed)
        if model_hook is not None:
            model_hook(model)
        model.compile(optimizer=make_optimizer(t), steps_per_execution=t.steps_per_execution)
    # A strategy-free copy for evaluation, predictions and export (built outside the scope;
    # get_weights is a collective under MultiWorkerMirroredStrategy: every worker runs it).
    plain = clone_for_export(model, spec, model.get_weights())
    per_epoch = t.eval_every if 0 < t.eval_every < t.steps else t.steps
    evaluator = PeriodicEval(plain, eval_ds, t.verbose, per_epoch, t.steps, t.record_eval_predictions)
    epochs = math.ceil(t.steps / per_epoch)
    start = time.perf_counter()
    history = model.fit(
        train_ds,
        epochs=epochs,
        steps_per_epoch=per_epoch,
        verbose=t.verbose,
        callbacks=_callbacks(config, model_dir, role, evaluator) + list(callbacks or []),
    )
    seconds = time.perf_counter() - start
    plain.set_weights(model.get_weights())  # the final weights (a collective: every worker)
    hist = {k: [float(x) for x in v] for k, v in history.history.items()}
    result: dict[str, Any] = {
        "eval": evaluator.last,
        "history": hist,
        "model": plain,
        "role": role,
        "train_seconds": seconds,
        "export_path": None,
        "model_dir": model_dir,
        "config": config,
    }
    if t.record_eval_predictions:
        result["eval_history"] = evaluator.history
        if role.is_chief and evaluator.history:
            np.savez_compressed(
                os.path.join(model_dir, EVAL_PREDICTIONS),
                steps=np.array([s for s, _ in evaluator.history], np.int64),
                predictions=np.stack([p for _, p in evaluator.history]),
                labels=evaluator.labels,
            )
    do_export = config.export.enabled if export is None else export
    if do_export and role.is_chief:
        e = config.export
        result["export_path"] = export_saved_model(
            plain,
            spec,
            e.base_dir or os.path.join(model_dir, "export"),
            e.model_name,
            e.version,
            warmup_requests=_warmup_requests(spec, e.warmup_requests),
            extra_files={loading.RESOLVED_FILENAME: os.path.join(model_dir, loading.RESOLVED_FILENAME)},
        )
    if predict_eval:
        if evaluator.history and evaluator.history[-1][0] == t.steps:  # already predicted at the end
            result["eval_predictions"], result["eval_labels"] = evaluator.history[-1][1], evaluator.labels
        else:
            result["eval_predictions"], result["eval_labels"] = predict_with_labels(plain, eval_ds)
    return result
