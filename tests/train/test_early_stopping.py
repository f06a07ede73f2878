"""Early stopping on the validation split: the patience rule, and real one-process runs that stop where
the validation AUC stops improving, keep the best evaluation's weights, resume to the same stop and the
same weights, and are refused without a validation split."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from recsys.train import fingerprint, run_state
from recsys.train.early_stopping import Decision, decide
from recsys.train.trainer import train
from tests.train.conftest import BEST, EARLY, STOP, exp, make_early_stopping_data


def test_the_patience_rule_stops_after_that_many_evaluations_without_improvement():
    auc = [(4, 0.60), (8, 0.70), (12, 0.69), (16, 0.70), (20, 0.65)]
    assert decide(auc, metric="auc", patience=3) == Decision(8, 0.70, 3, True)  # a tie is no improvement
    assert decide(auc, metric="auc", patience=4) == Decision(8, 0.70, 3, False)
    assert decide(auc[:2], metric="auc", patience=1) == Decision(8, 0.70, 0, False)
    assert decide([], metric="auc", patience=1) is None
    # min_delta: 0.70 -> 0.705 is not enough of an improvement, so step 12 counts against the patience
    assert decide([(4, 0.70), (8, 0.705), (12, 0.71)], metric="auc", patience=2,
                  min_delta=0.01) == Decision(4, 0.70, 2, True)
    loss = [(5, 0.50), (10, 0.40), (15, 0.41), (20, 0.39)]  # logloss: lower is better
    assert decide(loss, metric="logloss", patience=1) == Decision(10, 0.40, 1, True)
    assert decide(loss, metric="logloss", patience=2) == Decision(20, 0.39, 0, False)


@pytest.fixture(scope="module")
def data(run_once) -> str:
    return str(run_once("early-stopping-data", make_early_stopping_data) / "data")


@pytest.fixture(scope="module")
def stopped(data, tmp_path_factory):
    return train(exp(data, *EARLY), str(tmp_path_factory.mktemp("stopped") / "run"), predict_eval=True)


def _eval_file(model_dir: str, step: int) -> dict:
    with np.load(os.path.join(model_dir, "evals", f"step-{step:09d}.npz")) as z:
        return {"metrics": json.loads(str(z["metrics"])), "predictions": z["predictions"],
                "val_metrics": json.loads(str(z["val_metrics"]))}


def test_a_run_stops_where_the_validation_auc_stops_improving_and_keeps_the_best_weights(data, stopped,
                                                                                        tmp_path):
    es = stopped.early_stopping
    assert stopped.finished and stopped.stopped_at == STOP and stopped.best_step == BEST
    assert es["stopped_step"] == STOP and es["best_step"] == BEST and not es["hit_max"]
    assert es["evaluations"] == STOP // 4 and es["metric"] == "auc" and es["max_steps"] == 60
    val_auc = stopped.history["holdout_auc"]
    assert len(val_auc) == STOP // 4 and es["best_value"] == max(val_auc) == val_auc[BEST // 4 - 1]
    assert sorted(os.listdir(os.path.join(stopped.model_dir, "evals")))[-1] == f"step-{STOP:09d}.npz"
    # The kept weights are step 12's: the same digest as a run of this config stopped there.
    at_best = train(exp(data, *EARLY), str(tmp_path / "at-best"), stop_at_step=BEST)
    assert not at_best.finished
    assert fingerprint.weights_digest(at_best.model.get_weights()) == stopped.weights_sha256
    best, last = _eval_file(stopped.model_dir, BEST), _eval_file(stopped.model_dir, STOP)
    assert stopped.eval == best["metrics"] != last["metrics"]
    np.testing.assert_array_equal(stopped.eval_predictions, best["predictions"])
    assert best["val_metrics"]["auc"] == es["best_value"]
    # The run record and the export say the same; a start into the finished run trains nothing.
    fp = stopped.fingerprint
    assert fp["final_step"] == STOP and fp["early_stopping"] == es
    assert run_state.load(stopped.model_dir).early_stopping == es
    with open(os.path.join(stopped.export_path, "assets.extra", "fingerprint.json")) as fh:
        assert json.load(fh)["weights_sha256"] == stopped.weights_sha256
    again = train(exp(data, *EARLY), stopped.model_dir)
    assert again.already_finished and again.best_step == BEST and again.stopped_at == STOP


def test_a_run_killed_before_its_stop_resumes_to_the_same_stop_and_weights(data, stopped, tmp_path):
    model_dir = str(tmp_path / "m")
    killed = train(exp(data, *EARLY), model_dir, stop_at_step=17)  # after the evaluation at 16
    assert not killed.finished and killed.early_stopping is None
    resumed = train(exp(data, *EARLY), model_dir)
    assert resumed.stopped_at == STOP and resumed.early_stopping == stopped.early_stopping
    assert resumed.weights_sha256 == stopped.weights_sha256
    assert [r["step"] for r in resumed.fingerprint["resumes"]] == [17]


def test_a_run_killed_after_its_stop_before_the_export_trains_no_further_step(data, stopped, tmp_path):
    model_dir = str(tmp_path / "m")
    shutil.copytree(stopped.model_dir, model_dir)
    for name in ("fingerprint.json", "export"):  # killed before the fingerprint and the export
        path = os.path.join(model_dir, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    state = run_state.load(model_dir)
    state.finished, state.early_stopping = False, {}
    run_state.save(model_dir, state)
    resumed = train(exp(data, *EARLY), model_dir)
    assert resumed.stopped_at == STOP and resumed.best_step == BEST
    assert resumed.weights_sha256 == stopped.weights_sha256 and resumed.train_seconds == 0.0


def test_early_stopping_without_a_validation_split_is_refused_before_anything_is_written(data, tmp_path):
    with pytest.raises(ValueError, match=r"early_stopping_patience=2 needs a validation split.*"
                                         r"data\.validation_fraction > 0"):
        train(exp(data, *EARLY, "data.validation_fraction=0"), str(tmp_path / "m"))
    assert not os.path.exists(tmp_path / "m")
    with pytest.raises(ValueError, match="checkpoint must be true with early_stopping_patience > 0"):
        exp(data, *EARLY, "train.checkpoint=false")


def test_a_model_update_warm_starts_from_the_best_weights_of_a_run_that_stopped_early(data, stopped,
                                                                                     tmp_path):
    child = train(exp(data, f"train.warm_start_from={stopped.model_dir}"), str(tmp_path / "child"),
                  stop_at_step=0)
    assert fingerprint.weights_digest(child.model.get_weights()) == stopped.weights_sha256
