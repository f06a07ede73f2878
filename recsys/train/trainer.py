"""Train a ranking model from an :class:`Experiment`, resumable bit-exactly at any step.

``train(config, model_dir)`` is the Python API under ``recsys train``: a custom training loop over
:class:`~recsys.train.task.RankingTask` under any ``tf.distribute`` strategy. The complete training
state is the model, the optimizer (slots and global step) and the global step's position in the
input stream, which is a pure function of the step; it is saved every ``train.backup_every_steps``
steps, at every evaluation and at the end. A restarted job (a killed worker, a resubmission into the
same ``model_dir``) restores it and continues exactly where the saved job was: it ends with the same
weights, bit for bit, as a job that never failed (CPU; see docs/training.md for where this holds).

The loop is a :class:`~recsys.train.controller.Controller` calling actions (backup, evaluation,
heartbeat, visit log, fingerprint, export: :mod:`recsys.train.actions`, :mod:`recsys.train.end_actions`);
set-up is :mod:`recsys.train.session`, the assembly :mod:`recsys.train.loop`. The model_dir's files
are named by :class:`~recsys.train.run_dir.RunDir`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from recsys.compat import tf
from recsys.config.schema import Experiment
from recsys.train import run_state, session
from recsys.train.loop import build_loop
from recsys.train.loop import make_chunk_fn as make_chunk_fn  # re-exported: the benchmarks use it
from recsys.train.result import TrainResult, already_finished
from recsys.train.run_dir import RunDir
from recsys.train.session import check_config as check_config  # re-exported: recsys.train.check_config
from recsys.train.stop import agreed

EXIT_REFUSED = run_state.EXIT_REFUSED


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


def train(
    config: Experiment,
    model_dir: str,
    *,
    predict_eval: bool = False,
    export: bool | None = None,
    overwrite: bool = False,
    allow_resume_change: tuple[str, ...] = (),
    stop_at_step: int | None = None,
    stop_requested: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train (or resume), evaluate and (chief only) export; see :class:`TrainResult` for what it gives.

    ``predict_eval`` puts the eval predictions (last and per evaluation) into the result.
    ``overwrite`` discards a previous run in ``model_dir``; ``allow_resume_change`` (any of
    "config", "data", "workers") lets a restart resume despite that change (recorded in the
    fingerprint). ``stop_at_step`` ends the process's training early, state saved (tests, tools);
    so does ``stop_requested()`` turning True (asked after every chunk: a Ctrl-C in ``recsys train``);
    in a cluster every worker stops at the first chunk boundary where any worker's turned True
    (:mod:`recsys.train.stop`), so none waits for its peers in a collective.
    Raises :class:`~recsys.train.run_state.ResumeRefused` when a restart does not match its run, or
    (:class:`~recsys.train.run_lock.RunLocked`) when another job's chief holds the model_dir.
    """
    run_dir = RunDir(model_dir)
    opening = session.open_run(config, run_dir, overwrite=overwrite, allow=allow_resume_change)
    try:
        if opening.action == "finished":
            if opening.role.is_chief:
                fp = run_dir.read_fingerprint() or {}
                print(f"{run_dir.root} already holds this run, finished at step {fp.get('final_step')} "
                      f"(weights {str(fp.get('weights_sha256'))[:16]}...); nothing to do (--overwrite "
                      "starts over)", file=sys.stderr, flush=True)
            return already_finished(run_dir, opening.role, config)
        s = session.build(config, run_dir, opening)
        stop = stop_requested
        if stop is not None and opening.role.num_workers > 1:  # every worker stops at the same step
            stop = agreed(opening.strategy, stop)
        loop = build_loop(config, run_dir, s, predict_eval=predict_eval, export=export,
                          caveats=bitwise_caveats(config, opening.state), stop=stop)
        end = config.train.steps if stop_at_step is None else min(config.train.steps, stop_at_step)
        step = loop.controller.run(s.start, end)
        return loop.result(config, run_dir, s, step, predict_eval)
    finally:
        opening.release()
