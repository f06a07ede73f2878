"""Train a ranking model from an :class:`Experiment`, resumable bit-exactly at any step.

``train(config, model_dir)`` is the Python API under ``recsys train``: a custom training loop over
:class:`~recsys.train.task.RankingTask` under any ``tf.distribute`` strategy. The complete training
state is the model, the optimizer (slots and global step) and the global step's position in the
input stream, which is a pure function of the step; it is saved every ``train.backup_every_steps``
steps, at every evaluation and at the end. A restarted job (a killed worker, a resubmission into the
same ``model_dir``) restores it and continues exactly where the saved job was: it ends with the same
weights, bit for bit, as a job that never failed (CPU; see docs/training.md for where this holds).

Output per model_dir: ``config.yaml`` (resolved config), ``train_state.json`` (the run record),
``backup/`` (the state), ``checkpoints/`` (one per evaluation), ``evals/`` (eval predictions),
``logs/`` (TensorBoard), ``fingerprint.json`` and the export.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import numpy as np

import pipelines.feature_spec as feature_spec
from recsys.compat import keras, tf
from recsys.config import loading
from recsys.config.schema import Experiment
from recsys.data.input import shard_files
from recsys.models.activation import validate_activation
from recsys.train import fingerprint, heartbeat, run_state
from recsys.train.backup import Backup
from recsys.train.determinism import apply_determinism, perturb_weights
from recsys.train.strategy import Role, make_strategy
from recsys.train.task import RankingTask

EVAL_PREDICTIONS = "eval_predictions.npz"
FINGERPRINT_FILE = fingerprint.FINGERPRINT_FILE
EVALS_DIR = "evals"
VISITS_DIR = "visits"
EXIT_REFUSED = run_state.EXIT_REFUSED


def check_config(config: Experiment) -> feature_spec.FeatureSpec:
    """Fail early with a clear message: spec location, activations, shards (the schema checks the
    ranges and choices). Returns the spec."""
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
    for split in ("train", "eval"):
        shard_files(spec, split)  # "no train shards match ..." before anything is built
    return spec


def bitwise_caveats(config: Experiment, state: run_state.RunState | None) -> list[str]:
    """Why this run's weights might not be bit-identical to another run of the same config."""
    reasons = []
    if tf.config.list_physical_devices("GPU") and not config.determinism.op_determinism:
        reasons.append("GPU kernels without determinism.op_determinism=true (atomics, autotuned "
                       "algorithms) may differ from run to run")
    for r in state.resumes if state else []:
        if r.get("changes"):
            reasons.append(f"resumed at step {r['step']} with a changed {', '.join(r['changes'])}")
    return reasons


def make_chunk_fn(strategy: tf.distribute.Strategy, task: RankingTask, model: Any,
                  optimizer: keras.optimizers.Optimizer) -> Any:
    """``run_chunk(iterator, n)``: ``n`` training steps in one ``tf.function`` call, then the train
    metrics (per replica). The loop's and the benchmarks' one definition of a step sequence (call
    ``task.build_objective()`` first, in the strategy's scope)."""
    if task.objective is None:
        raise RuntimeError("task.build_objective() before make_chunk_fn()")
    metrics = task.objective.metrics

    @tf.function
    def run_chunk(iterator, n):
        # Every step runs in the loop body, one after the other: a step's numbers must not depend on
        # where its chunk starts (a resumed job cuts its chunks elsewhere; graph rewrites such as
        # oneDNN fusions differ between a loop body and the function around it).
        for _ in tf.range(n):
            tf.autograph.experimental.set_loop_options(parallel_iterations=1)
            strategy.run(task.train_step, args=(model, optimizer, *next(iterator)))
        return strategy.run(lambda: {m.name: m.result() for m in metrics})

    return run_chunk


class _Loop:
    """The schedule of one worker: chunks of steps between events (heartbeats, backups, evals)."""

    def __init__(self, config: Experiment, model_dir: str, role: Role, strategy: tf.distribute.Strategy,
                 task: RankingTask) -> None:
        self.config, self.model_dir, self.role, self.strategy, self.task = config, model_dir, role, \
            strategy, task
        t = config.train
        self.total = t.steps
        self.eval_every = t.eval_every if 0 < t.eval_every < t.steps else t.steps
        self.backup_every = t.backup_every_steps
        self.chunk = max(1, t.steps_per_execution)
        self.beat_path = os.environ.get(heartbeat.HEARTBEAT_FILE_ENV, "")
        self.beat_every = max(1, int(os.environ.get(heartbeat.HEARTBEAT_EVERY_ENV, "0") or 0)
                              or heartbeat.DEFAULT_EVERY)
        self.say = print if (t.verbose and role.is_chief) else (lambda *a, **k: None)

    def next_event(self, step: int) -> int:
        """The next step at which something besides training happens."""
        marks = [self.total, (step // self.eval_every + 1) * self.eval_every,
                 (step // self.beat_every + 1) * self.beat_every]
        if self.backup_every:
            marks.append((step // self.backup_every + 1) * self.backup_every)
        return min(marks)

    def beat(self, step: int, phase: str) -> None:
        if self.beat_path:
            heartbeat.write_heartbeat(self.beat_path, step, phase)
            print(heartbeat.format_line(step, phase), file=sys.stderr, flush=True)


def _metric_line(values: dict[str, Any]) -> str:
    return " - ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in values.items())


def _write_summaries(writer, step: int, values: dict[str, Any]) -> None:
    with writer.as_default(step=step):
        for k, v in values.items():
            if isinstance(v, float):
                tf.summary.scalar(f"epoch_{k}", v)
    writer.flush()


def _save_eval(model_dir: str, step: int, preds: np.ndarray, labels: np.ndarray,
               values: dict[str, Any], validation: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """``evals/step-<step>.npz`` (predictions, labels, metrics as JSON; with a validation split also
    val_predictions and val_labels), atomically."""
    path = _eval_path(model_dir, step)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}.npz"
    arrays: dict[str, Any] = {"predictions": preds, "labels": labels, "metrics": json.dumps(values)}
    if validation is not None:
        arrays.update(val_predictions=validation[0], val_labels=validation[1])
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load_validation(model_dir: str) -> tuple[list[tuple[int, np.ndarray]], np.ndarray | None]:
    """Every saved evaluation's validation predictions [(step, predictions)] and the validation labels."""
    directory = os.path.join(model_dir, EVALS_DIR)
    out, labels = [], None
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if name.startswith("step-") and name.endswith(".npz") and ".tmp-" not in name:
            with np.load(os.path.join(directory, name)) as z:
                if "val_predictions" in z:
                    out.append((int(name[5:14]), z["val_predictions"]))
                    labels = z["val_labels"]
    return out, labels


def load_evals(model_dir: str) -> list[tuple[int, np.ndarray, np.ndarray, dict[str, Any]]]:
    """Every saved evaluation of a run (step order): (step, predictions, labels, metrics)."""
    directory = os.path.join(model_dir, EVALS_DIR)
    out = []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if name.startswith("step-") and name.endswith(".npz") and ".tmp-" not in name:
            with np.load(os.path.join(directory, name)) as z:
                out.append((int(name[5:14]), z["predictions"], z["labels"], json.loads(str(z["metrics"]))))
    return out


def _finished_result(model_dir: str, role: Role, config: Experiment) -> dict[str, Any]:
    with open(os.path.join(model_dir, FINGERPRINT_FILE), encoding="utf-8") as fh:
        fp = json.load(fh)
    if role.is_chief:
        print(f"{model_dir} already holds this run, finished at step {fp['final_step']} "
              f"(weights {fp['weights_sha256'][:16]}...); nothing to do (--overwrite starts over)",
              file=sys.stderr, flush=True)
    return {"eval": fp.get("eval", {}), "history": {}, "model": None, "role": role, "train_seconds": 0.0,
            "export_path": fp.get("export_path"), "model_dir": model_dir, "config": config,
            "fingerprint": fp, "already_finished": True}


def train(
    config: Experiment,
    model_dir: str,
    *,
    predict_eval: bool = False,
    export: bool | None = None,
    overwrite: bool = False,
    allow_resume_change: tuple[str, ...] = (),
    stop_at_step: int | None = None,
) -> dict[str, Any]:
    """Train (or resume), evaluate and (chief only) export. Returns a dict with:

    ``eval`` (loss/auc/logloss/calibration/examples, exact, over the whole eval split), ``history``
    (``{metric: [value per evaluation]}``, train and ``val_`` metrics), ``export_path`` (None unless
    exported here), ``model`` (a strategy-free copy of the trained model), ``role``,
    ``train_seconds`` (in training steps), ``loop_seconds`` (the whole loop: steps, backups,
    evaluations), ``fingerprint``, and with ``predict_eval`` (or
    ``train.record_eval_predictions``) also ``eval_history`` [(step, predictions)],
    ``eval_predictions`` and ``eval_labels`` (NumPy, eval-split order).

    ``overwrite`` discards a previous run in ``model_dir``; ``allow_resume_change`` (any of
    "config", "data", "workers") lets a restart resume despite that change (recorded in the
    fingerprint). ``stop_at_step`` ends the process's training early, state saved (tests, tools).
    Raises :class:`~recsys.train.run_state.ResumeRefused` when a restart does not match its run.
    """
    strategy, role = make_strategy(config.determinism.collective)  # before any other TF op
    if config.train.verbose:  # an early sign of life for a supervisor (and a person)
        print(f"recsys train: worker {role.task_index} of {role.num_workers} starting in {model_dir}",
              file=sys.stderr, flush=True)
    spec = check_config(config)
    task = RankingTask(config, spec)
    ident = run_state.identity(config, role.num_workers)
    probe = Backup(model_dir, tf.train.Checkpoint(), role)  # only to see whether a backup exists
    action, state = run_state.prepare(model_dir, ident, has_backup=probe.has_state(), overwrite=overwrite,
                                      allow=allow_resume_change, write=role.is_chief)
    if action == "finished":
        return _finished_result(model_dir, role, config)
    apply_determinism(config.determinism)
    if role.is_chief:
        loading.save(config, model_dir)
    t = config.train
    with strategy.scope():
        model = task.build_model()
        optimizer = task.build_optimizer(model)
        objective = task.build_objective()
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, objective=objective)
    backup = Backup(model_dir, checkpoint, role)
    restored = backup.restore() if action == "resume" else None
    start = int(optimizer.iterations.numpy())
    if restored is None:
        if start:
            raise RuntimeError(f"a fresh model starts at step {start}, not 0")
        if config.determinism.weight_noise > 0:  # the study's "numerical noise" source
            perturb_weights(model, config.determinism.weight_noise, config.determinism.weight_noise_seed)
    else:
        changes = sorted(run_state.differences(state, ident)) if state else []
        print(f"resuming from {restored} at global step {start}"
              f"{f' (allowed changes: {changes})' if changes else ''}", file=sys.stderr, flush=True)
        if role.is_chief and state is not None:
            run_state.record_resume(model_dir, state, start, ident, changes)
    if start > t.steps:
        raise run_state.ResumeRefused(f"{model_dir} holds a state at step {start}, past train.steps="
                                      f"{t.steps}; --overwrite starts over")
    loop = _Loop(config, model_dir, role, strategy, task)
    dist_it = iter(task.build_inputs(strategy, start, with_ids=t.record_visits))

    run_chunk = make_chunk_fn(strategy, task, model, optimizer)
    eval_ds = task.build_eval_inputs()
    val_ds = task.build_validation_inputs()  # None unless data.validation_fraction > 0
    plain = task.plain_copy(model)  # strategy-free: evaluation and export run no collectives
    kept = Backup(model_dir, checkpoint, role, subdir="checkpoints", keep=None) if t.checkpoint else None
    writers = {}
    if t.tensorboard and role.is_chief:
        logs = os.path.join(model_dir, "logs")
        writers = {"train": tf.summary.create_file_writer(os.path.join(logs, "train")),
                   "validation": tf.summary.create_file_writer(os.path.join(logs, "validation"))}
    history: dict[str, list[float]] = {}
    visits = _visit_log(model_dir, role) if t.record_visits else None
    task.visit_writer = visits.write_step if visits is not None else None
    last: dict[str, Any] = {}  # metrics, predictions and labels of the latest evaluation

    def evaluate_at(step: int, train_values: dict[str, Any], rate: float) -> None:
        loop.beat(step, "eval")
        plain.set_weights(model.get_weights())
        values, preds, labels = task.evaluate(plain, eval_ds)
        validation = None
        if val_ds is not None:
            val_values, val_preds, val_labels = task.evaluate(plain, val_ds)
            validation = (val_preds, val_labels)
            for k, v in val_values.items():
                if k != "examples":
                    history.setdefault(f"holdout_{k}", []).append(float(v))
        last.update(metrics=values, preds=preds, labels=labels, validation=validation)
        if role.is_chief:
            _save_eval(model_dir, step, preds, labels, values, validation)
        for k, v in train_values.items():
            history.setdefault(k, []).append(v)
        for k, v in values.items():
            if k != "examples":
                history.setdefault(f"val_{k}", []).append(float(v))
        if train_values:
            loop.say(f"step {step}/{t.steps} - {_metric_line(train_values)} - {rate:,.0f} ex/s", flush=True)
        loop.say(f"eval at step {step}: {_metric_line(values)}", flush=True)
        if writers:
            _write_summaries(writers["train"], step, train_values)
            _write_summaries(writers["validation"], step, values)

    loop.beat(start, "begin")
    step, seconds, window_start, window_steps = start, 0.0, time.perf_counter(), 0
    end = t.steps if stop_at_step is None else min(t.steps, stop_at_step)
    if restored is not None and (start % loop.eval_every == 0 or start == t.steps):
        if not os.path.exists(_eval_path(model_dir, start)):  # killed during that evaluation
            evaluate_at(start, {}, 0.0)
    loop_start = time.perf_counter()
    while step < end:
        n = min(loop.chunk, loop.next_event(step) - step, end - step)
        t0 = time.perf_counter()
        metrics = run_chunk(dist_it, tf.constant(n, tf.int64))
        seconds += time.perf_counter() - t0
        step += n
        window_steps += n
        if step % loop.beat_every == 0:
            loop.beat(step, "train")
        is_eval = step % loop.eval_every == 0 or step == t.steps
        if (loop.backup_every and step % loop.backup_every == 0) or is_eval or step == end:
            backup.save(step)
        if is_eval:
            train_values = {k: float(v) for k, v in strategy.experimental_local_results(metrics)[0].items()
                            if t.train_metrics or k == "loss"}
            rate = window_steps * config.data.batch_size / max(time.perf_counter() - window_start, 1e-9)
            for m in objective.metrics:
                m.reset_state()
            if kept is not None:
                kept.save(step)
            evaluate_at(step, train_values, rate)
            window_start, window_steps = time.perf_counter(), 0
    loop.beat(step, "end")
    for b in (backup, kept):
        if b is not None:
            b.cleanup()
    if visits is not None:
        visits.close()
    result: dict[str, Any] = {"eval": last.get("metrics", {}), "history": history, "model": plain,
                              "role": role, "train_seconds": seconds, "export_path": None,
                              "model_dir": model_dir, "config": config, "stopped_at": step,
                              "loop_seconds": time.perf_counter() - loop_start}
    if step < t.steps:  # stopped early on request: the state is saved, the run is not finished
        return result
    if not last:  # resumed at the very end: the final evaluation was saved before the restart
        plain.set_weights(model.get_weights())
        values, preds, labels = task.evaluate(plain, eval_ds)
        last.update(metrics=values, preds=preds, labels=labels)
        result["eval"] = values
    last_eval, last_preds = last["metrics"], (last["preds"], last["labels"])
    digest = fingerprint.weights_digest(plain.get_weights())
    evals = load_evals(model_dir) if role.is_chief else []
    if t.record_eval_predictions or predict_eval:
        history_preds = [(s, p) for s, p, _, _ in evals] if role.is_chief else []
        if not history_preds or history_preds[-1][0] != t.steps:
            history_preds.append((t.steps, last_preds[0]))
        result["eval_history"] = history_preds
        val_history, val_labels = load_validation(model_dir) if role.is_chief else ([], None)
        if val_history:  # held-out validation predictions at the same steps, for model selection
            result["validation_history"], result["validation_labels"] = val_history, val_labels
        if role.is_chief and t.record_eval_predictions:
            arrays: dict[str, Any] = {"steps": np.array([s for s, _ in history_preds], np.int64),
                                      "predictions": np.stack([p for _, p in history_preds]),
                                      "labels": last_preds[1]}
            if val_history:
                arrays.update(val_steps=np.array([s for s, _ in val_history], np.int64),
                              val_predictions=np.stack([p for _, p in val_history]), val_labels=val_labels)
            np.savez_compressed(os.path.join(model_dir, EVAL_PREDICTIONS), **arrays)
    if predict_eval:
        result["eval_predictions"], result["eval_labels"] = last_preds
    fp = {
        "weights_sha256": digest,
        "final_step": int(step),
        "config_sha256": ident.config_sha256,
        "data": ident.data,
        "num_workers": role.num_workers,
        "libraries": fingerprint.library_versions(),
        "resumes": state.resumes if state else [],
        "bitwise_caveats": bitwise_caveats(config, state),
        "eval": last_eval,
        "export_path": None,
    }
    do_export = config.export.enabled if export is None else export
    if role.is_chief:
        fp_path = _write_json(os.path.join(model_dir, FINGERPRINT_FILE), fp)
        if do_export:
            e = config.export
            result["export_path"] = task.export(
                plain, e.base_dir or os.path.join(model_dir, "export"),
                {loading.RESOLVED_FILENAME: os.path.join(model_dir, loading.RESOLVED_FILENAME),
                 FINGERPRINT_FILE: fp_path})
            fp["export_path"] = result["export_path"]
            _write_json(fp_path, fp)
        if state is not None:
            state.finished, state.final_step, state.weights_sha256 = True, int(step), digest
            run_state.save(model_dir, state)
    result["fingerprint"] = fp
    return result


def _eval_path(model_dir: str, step: int) -> str:
    return os.path.join(model_dir, EVALS_DIR, f"step-{step:09d}.npz")


class _VisitLog:
    """``visits/worker-<i>.jsonl``: one line per (step, replica) with the example fingerprints."""

    def __init__(self, model_dir: str, role: Role) -> None:
        directory = os.path.join(model_dir, VISITS_DIR)
        os.makedirs(directory, exist_ok=True)
        self._fh = open(os.path.join(directory, f"worker-{role.task_index}.jsonl"), "a",  # noqa: SIM115
                        encoding="utf-8")

    def write_step(self, step: Any, replica: Any, ids: Any) -> None:
        self._fh.write(json.dumps({"step": int(step), "replica": int(replica),
                                   "ids": [int(x) for x in np.asarray(ids)]}) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _visit_log(model_dir: str, role: Role) -> _VisitLog:
    return _VisitLog(model_dir, role)


def _write_json(path: str, value: Any) -> str:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(value, fh, indent=2)
    os.replace(tmp, path)
    return path
