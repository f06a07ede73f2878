"""Assemble one process's training loop: the chunk function, the actions in their order, the
controller; and turn what the actions hold at the end into a :class:`TrainResult`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recsys.compat import keras, tf
from recsys.config.schema import Experiment
from recsys.train import actions, end_actions
from recsys.train.backup import Backup
from recsys.train.controller import Action, Controller
from recsys.train.early_stopping import Stopper
from recsys.train.progress import Progress
from recsys.train.result import TrainResult
from recsys.train.run_dir import CHECKPOINTS, RunDir
from recsys.train.session import Session
from recsys.train.task import RankingTask


@dataclass
class Loop:
    """The controller and the actions whose state makes the result."""

    controller: Controller
    evaluation: actions.Evaluation
    predictions: end_actions.EvalPredictions | None
    fingerprint: end_actions.Fingerprint
    export: end_actions.Export | None
    plain: Any  # the strategy-free copy of the model: evaluation, digest and export read it

    def result(self, config: Experiment, run_dir: RunDir, s: Session, step: int,
               predict_eval: bool) -> TrainResult:
        """What this process's run gave (the same fields whether it finished or stopped early)."""
        last, p = self.evaluation.last, self.predictions
        return TrainResult(
            model_dir=run_dir.root, config=config, role=s.opening.role, stopped_at=step,
            eval=last.metrics if last else {}, history=self.evaluation.history, model=self.plain,
            train_seconds=self.controller.times.train_seconds,
            loop_seconds=self.controller.times.loop_seconds,
            export_path=self.export.path if self.export else None, fingerprint=self.fingerprint.fp,
            early_stopping=self.fingerprint.fp.get("early_stopping") if self.fingerprint.fp else None,
            eval_history=p.history if p else [],
            eval_predictions=last.predictions if predict_eval and last and self.fingerprint.fp else None,
            eval_labels=last.labels if predict_eval and last and self.fingerprint.fp else None,
            validation_history=p.validation_history if p else [],
            validation_labels=p.validation_labels if p else None)


def make_chunk_fn(strategy: tf.distribute.Strategy, task: RankingTask, model: Any,
                  optimizer: keras.optimizers.Optimizer) -> Any:
    """``run_chunk(iterator, n)``: ``n`` training steps in one ``tf.function`` call, then the train
    metrics (per replica). The loop's and the benchmarks' one definition of a step sequence (call
    ``task.build_objective()`` first, in the strategy's scope)."""
    if task.objective is None:
        raise RuntimeError("task.build_objective() before make_chunk_fn()")
    metrics = task.objective.metrics

    # autograph=False: the code is traced as written (one explicit while loop, no control flow on
    # tensors elsewhere), so nothing it calls -- the model, the objective, the optimizer -- is
    # source-converted by AutoGraph, which was about half of a small job's start-up CPU.
    @tf.function(autograph=False)
    def run_chunk(iterator, n):
        # Every step runs in the loop body, one after the other: a step's numbers must not depend on
        # where its chunk starts (a resumed job cuts its chunks elsewhere; graph rewrites such as
        # oneDNN fusions differ between a loop body and the function around it).
        def step(i):
            strategy.run(task.train_step, args=(model, optimizer, *next(iterator)))
            return (i + 1,)

        tf.while_loop(lambda i: i < n, step, (tf.constant(0, n.dtype),), parallel_iterations=1)
        return strategy.run(lambda: {m.name: m.result() for m in metrics})

    return run_chunk


def build_loop(config: Experiment, run_dir: RunDir, s: Session, *, predict_eval: bool,
               export: bool | None, caveats: list[str], stop: Callable[[], bool] | None = None) -> Loop:
    """Every action this run asks for, in the order they act at a step and at the end."""
    o, t = s.opening, config.train
    strategy, task, role = o.strategy, o.task, o.role
    dist_it = iter(task.build_inputs(strategy, s.start, with_ids=t.record_visits))
    chunk_fn = make_chunk_fn(strategy, task, s.model, s.optimizer)
    eval_ds, val_ds = task.build_eval_inputs(), task.build_validation_inputs()
    plain = task.plain_copy(s.model)  # strategy-free: evaluation and export run no collectives

    def evaluate(with_validation: bool) -> tuple[actions.Evaluated, actions.Evaluated | None]:
        plain.set_weights(s.model.get_weights())
        ev = actions.Evaluated(*task.evaluate(plain, eval_ds))
        val = actions.Evaluated(*task.evaluate(plain, val_ds)) if with_validation and val_ds else None
        return ev, val

    def select(step: int) -> actions.Evaluated:
        """The kept checkpoint of ``step`` into the strategy-free copy (no collectives: every worker
        reads the chief's file), and that copy's eval-split evaluation."""
        tf.train.Checkpoint(model=plain).restore(run_dir.checkpoint_path(step)) \
            .assert_existing_objects_matched().expect_partial()
        return actions.Evaluated(*task.evaluate(plain, eval_ds))

    def local_metrics(metrics: Any) -> dict[str, float]:
        return {k: float(v) for k, v in strategy.experimental_local_results(metrics)[0].items()
                if t.train_metrics or k == "loss"}

    def reset_metrics() -> None:
        for m in s.objective.metrics:
            m.reset_state()

    writers = {}
    if t.tensorboard and role.is_chief:
        writers = {name: tf.summary.create_file_writer(os.path.join(run_dir.logs, name))
                   for name in ("train", "validation")}
    beat = actions.Heartbeat.from_env()
    progress = Progress(t.steps, config.data.batch_size) if (t.verbose and role.is_chief) else None

    def say(line: str) -> None:
        if progress is not None:
            progress.clear()
            print(line, flush=True)

    evaluation = actions.Evaluation(
        every=t.eval_every if 0 < t.eval_every < t.steps else t.steps, total=t.steps, evaluate=evaluate,
        reset_metrics=reset_metrics, local_metrics=local_metrics, run_dir=run_dir, is_chief=role.is_chief,
        resumed=s.restored is not None, examples_per_step=config.data.batch_size,
        keep=Backup(run_dir, s.checkpoint, role, subdir=CHECKPOINTS, keep=None) if t.checkpoint else None,
        writers=writers, beat=beat.beat, say=say,
        stopper=Stopper(t, run_dir) if t.early_stopping_patience else None, select=select)
    steps: list[Action] = [beat] + ([progress] if progress is not None else [])
    if t.record_visits:
        steps.append(actions.VisitLog(run_dir, role.task_index, task))
    steps += [actions.Saves(s.backup, t.backup_every_steps, lambda step: evaluation.due(step, step)),
              evaluation]
    predictions = None
    if t.record_eval_predictions or predict_eval:
        predictions = end_actions.EvalPredictions(evaluation, run_dir, is_chief=role.is_chief,
                                                  record=t.record_eval_predictions)
        steps.append(predictions)
    fp = end_actions.Fingerprint(run_dir, total=t.steps, weights=plain.get_weights, ident=o.ident,
                                 state=o.state, evaluation=evaluation, num_workers=role.num_workers,
                                 caveats=caveats, is_chief=role.is_chief)
    steps.append(fp)
    exporter = None
    if role.is_chief and (config.export.enabled if export is None else export):
        exporter = end_actions.Export(run_dir, fp, lambda base, extra: task.export(plain, base, extra),
                                      config.export.base_dir)
        steps.append(exporter)
    if role.is_chief and o.state is not None:
        steps.append(end_actions.RunRecord(run_dir, o.state, fp))
    controller = Controller(lambda n: chunk_fn(dist_it, tf.constant(n, tf.int64)), total=t.steps,
                            chunk=t.steps_per_execution, actions=steps, stop=stop)
    return Loop(controller, evaluation, predictions, fp, exporter, plain)
