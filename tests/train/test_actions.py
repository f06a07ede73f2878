"""The evaluation and visit-log actions on their own (no model: an evaluation function of the step)."""

from __future__ import annotations

import json

import numpy as np

from recsys.train.actions import Evaluated, Evaluation, VisitLog
from recsys.train.controller import Controller
from recsys.train.run_dir import RunDir


class Counter:
    """A "model" whose predictions are its step count: evaluate() reports what it was called at."""

    def __init__(self) -> None:
        self.step, self.calls, self.resets = 0, [], 0

    def run_chunk(self, n: int) -> dict[str, float]:
        self.step += n
        return {"loss": float(self.step)}

    def evaluate(self, with_validation: bool) -> tuple[Evaluated, Evaluated | None]:
        self.calls.append((self.step, with_validation))
        ev = Evaluated({"auc": self.step / 100, "examples": 3}, np.full(3, self.step, np.float32),
                       np.array([0, 1, 0], np.float32))
        val = Evaluated({"auc": self.step / 200}, np.full(2, -self.step, np.float32),
                        np.array([1, 1], np.float32)) if with_validation else None
        return ev, val


def _evaluation(counter: Counter, run_dir: RunDir, *, resumed: bool = False, is_chief: bool = True,
                every: int = 4, total: int = 10) -> Evaluation:
    def reset() -> None:
        counter.resets += 1

    return Evaluation(every=every, total=total, evaluate=counter.evaluate, reset_metrics=reset,
                      local_metrics=dict, run_dir=run_dir, is_chief=is_chief, resumed=resumed,
                      examples_per_step=8)


def test_evaluation_at_its_interval_and_the_last_step_writes_eval_files_and_history(tmp_path):
    counter, run_dir = Counter(), RunDir(tmp_path)
    evaluation = _evaluation(counter, run_dir)
    Controller(counter.run_chunk, total=10, chunk=100, actions=[evaluation]).run(0, 10)
    assert counter.calls == [(4, True), (8, True), (10, True)] and counter.resets == 3
    assert evaluation.history == {"holdout_auc": [0.02, 0.04, 0.05], "loss": [4.0, 8.0, 10.0],
                                  "val_auc": [0.04, 0.08, 0.1]}
    assert evaluation.last is not None and evaluation.last.metrics["auc"] == 0.1
    saved = run_dir.load_evals()
    assert [s for s, *_ in saved] == [4, 8, 10]
    assert saved[1][1].tolist() == [8, 8, 8] and saved[1][3] == {"auc": 0.08, "examples": 3}
    val_history, val_labels = run_dir.load_validation()
    assert [(s, p.tolist()) for s, p in val_history] == [(4, [-4, -4]), (8, [-8, -8]), (10, [-10, -10])]
    assert val_labels.tolist() == [1, 1]


def test_a_worker_evaluates_but_writes_no_eval_files(tmp_path):
    counter, run_dir = Counter(), RunDir(tmp_path)
    evaluation = _evaluation(counter, run_dir, is_chief=False)
    Controller(counter.run_chunk, total=10, chunk=100, actions=[evaluation]).run(0, 10)
    assert len(counter.calls) == 3 and run_dir.load_evals() == []


def test_a_restart_redoes_only_an_evaluation_killed_before_its_file(tmp_path):
    counter, run_dir = Counter(), RunDir(tmp_path)
    counter.step = 8  # restored at step 8, an evaluation step whose file is missing
    evaluation = _evaluation(counter, run_dir, resumed=True)
    evaluation.begin(8)
    assert counter.calls == [(8, True)] and run_dir.has_eval(8)
    again = _evaluation(counter, run_dir, resumed=True)
    again.begin(8)  # its file is there now: nothing to redo
    assert counter.calls == [(8, True)]


def test_resumed_at_the_last_step_evaluates_once_without_writing(tmp_path):
    counter, run_dir = Counter(), RunDir(tmp_path)
    run_dir.write_eval(10, np.zeros(3), np.zeros(3), {"auc": 0.5})
    counter.step = 10
    evaluation = _evaluation(counter, run_dir, resumed=True)
    Controller(counter.run_chunk, total=10, chunk=100, actions=[evaluation]).run(10, 10)
    assert counter.calls == [(10, False)] and evaluation.history == {}
    assert evaluation.last is not None and evaluation.last.metrics["auc"] == 0.1
    assert run_dir.load_evals()[0][3] == {"auc": 0.5}  # the saved one is left as it was


class Task:
    visit_writer = None


def test_visit_log_appends_one_line_per_step_and_replica(tmp_path):
    run_dir, task = RunDir(tmp_path), Task()
    log = VisitLog(run_dir, 1, task)
    log.begin(0)
    task.visit_writer(np.int64(3), np.int32(0), np.array([5, 6]))
    log.end(3)
    log.begin(3)  # a restart appends
    task.visit_writer(4, 1, [7])
    log.end(4)
    with open(run_dir.visit_log(1)) as fh:
        lines = [json.loads(x) for x in fh]
    assert lines == [{"step": 3, "replica": 0, "ids": [5, 6]}, {"step": 4, "replica": 1, "ids": [7]}]
