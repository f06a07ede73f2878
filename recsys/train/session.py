"""Set-up of one training process: the strategy, the task, the run record's decision, then the
model, optimizer and objective restored from the backup (or fresh)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import pipelines.feature_spec as feature_spec
from recsys.compat import tf
from recsys.config import loading
from recsys.config.schema import Experiment
from recsys.data.input import shard_files
from recsys.models.activation import validate_activation
from recsys.train import parent, run_state, sizing
from recsys.train.backup import Backup
from recsys.train.determinism import apply_determinism, perturb_weights
from recsys.train.run_dir import RunDir
from recsys.train.run_lock import RunLock
from recsys.train.strategy import Role, make_strategy
from recsys.train.task import RankingTask


def check_config(config: Experiment) -> feature_spec.FeatureSpec:
    """Fail early with a clear message: spec location, activations, shards (the schema checks the
    ranges and choices). Returns the spec."""
    if not config.data.spec_dir:
        raise ValueError("data.spec_dir is not set (the directory written by `recsys preprocess`)")
    spec = feature_spec.load(config.data.spec_dir)
    if config.train.early_stopping_patience and not config.data.validation_fraction:
        raise ValueError(f"train.early_stopping_patience={config.train.early_stopping_patience} needs a "
                         "validation split to stop on: set data.validation_fraction > 0 (e.g. 0.1), or "
                         "train.early_stopping_patience=0 for a fixed number of steps")
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
    for split in ("train", "eval"):  # "no train shards match ...", a missing window: before anything is built
        shard_files(spec, split, config.data.windows)
    return spec


@dataclass(frozen=True)
class Opening:
    """What a start found: ``action`` is "new", "resume" or "finished" (see run_state.prepare), and
    the parents it loaded (:mod:`recsys.train.parent`)."""

    strategy: tf.distribute.Strategy
    role: Role
    task: RankingTask
    ident: run_state.RunIdentity
    action: str
    state: run_state.RunState | None
    lock: RunLock | None  # the chief's, held until release()
    parents: parent.Parents = parent.Parents()

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


@dataclass(frozen=True)
class Session:
    """The training state of this process, at global step ``start``."""

    opening: Opening
    model: Any
    optimizer: Any
    objective: Any
    checkpoint: tf.train.Checkpoint
    backup: Backup
    restored: str | None
    start: int


def open_run(config: Experiment, run_dir: RunDir, *, overwrite: bool, allow: tuple[str, ...]) -> Opening:
    """Strategy first (before any other TF op), the config checks, the parents (warm start, teacher:
    a :class:`~recsys.train.parent.ParentError` before anything is written), the chief's lock on the
    model_dir (:class:`~recsys.train.run_lock.RunLocked` when another job holds it), then the run
    record's decision."""
    strategy, role = make_strategy(config.determinism.collective)
    if config.train.verbose:  # an early sign of life for a supervisor (and a person)
        print(f"recsys train: worker {role.task_index} of {role.num_workers} starting in {run_dir.root}",
              file=sys.stderr, flush=True)
    spec = check_config(config)
    if role.is_chief:
        sizing.warn(config, spec)
    task = RankingTask(config, spec)
    # The warm-start parent is read only when this start may be a new run: a resume takes its backup.
    parents = parent.resolve(config, task.spec, new_run=overwrite or not run_dir.has_backup(),
                             build_model=task.build_model)
    ident = run_state.identity(config, role.num_workers, parents.lineage(config.train.distill_weight))
    lock = RunLock(run_dir) if role.is_chief else None
    if lock is not None:
        lock.acquire()
    try:
        action, state = run_state.prepare(run_dir.root, ident, has_backup=run_dir.has_backup(),
                                          overwrite=overwrite, allow=allow, write=role.is_chief)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return Opening(strategy, role, task, ident, action, state, lock, parents)


def build(config: Experiment, run_dir: RunDir, o: Opening) -> Session:
    """Build model, optimizer and objective under the strategy; restore a resumed run's state."""
    apply_determinism(config.determinism)
    if o.role.is_chief:
        loading.save(config, run_dir.root)
    teacher = o.parents.teacher
    with o.strategy.scope():
        model = o.task.build_model()
        optimizer = o.task.build_optimizer(model)
        if teacher is not None:  # frozen, outside the checkpoint: read from the parent on every start
            o.task.build_teacher(teacher.model_config, teacher.weights)
        objective = o.task.build_objective()
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, objective=objective)
    backup = Backup(run_dir, checkpoint, o.role)
    restored = backup.restore() if o.action == "resume" else None
    if restored is None and config.train.warm_start_from:
        warm_start(config, o, model, optimizer)
    start = int(optimizer.iterations.numpy())
    if restored is None:
        if start:
            raise RuntimeError(f"a fresh model starts at step {start}, not 0")
        if config.determinism.weight_noise > 0:  # the study's "numerical noise" source
            perturb_weights(model, config.determinism.weight_noise, config.determinism.weight_noise_seed)
    else:
        changes = sorted(run_state.differences(o.state, o.ident)) if o.state else []
        print(f"resuming from {restored} at global step {start}"
              f"{f' (allowed changes: {changes})' if changes else ''}", file=sys.stderr, flush=True)
        if o.role.is_chief and o.state is not None:
            run_state.record_resume(run_dir.root, o.state, start, o.ident, changes)
    if start > config.train.steps:
        raise run_state.ResumeRefused(f"{run_dir.root} holds a state at step {start}, past train.steps="
                                      f"{config.train.steps}; --overwrite starts over")
    return Session(o, model, optimizer, objective, checkpoint, backup, restored, start)


def warm_start(config: Experiment, o: Opening, model: Any, optimizer: Any) -> None:
    """A new run takes the parent's weights (and, asked, a run parent's optimizer slots)."""
    warm = o.parents.warm
    if warm is None:
        raise RuntimeError("a new warm-started run without its parent loaded (open_run)")
    with o.strategy.scope():
        model.set_weights(warm.weights)
        if config.train.warm_start_optimizer:
            parent.restore_optimizer(warm, model, optimizer, config.train.learning_rate)
    if config.train.verbose and o.role.is_chief:
        slots = " and optimizer slots" if config.train.warm_start_optimizer else ""
        print(f"warm start: weights{slots} of {warm.source.path} (weights "
              f"{warm.source.fingerprint['weights_sha256'][:16]}...)", file=sys.stderr, flush=True)
