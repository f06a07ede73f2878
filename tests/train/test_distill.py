"""Churn-reducing distillation on real training (one process): weight 0 is no distillation bit for
bit, a positive weight pulls the child's predictions toward its parent's, the teacher goes into the
lineage, a distilled run resumes exactly, and a resume with another teacher is refused."""

from __future__ import annotations

import shutil

import pytest

from recsys.train import run_state
from recsys.train.trainer import train
from serving.pd import relative_pd
from tests.train.conftest import exp


def test_weight_zero_is_no_distillation_bit_for_bit(parent, tmp_path):
    plain = train(exp(parent["data"]), str(tmp_path / "plain"))
    zero = train(exp(parent["data"], f"train.distill_from={parent['export']}", "train.distill_weight=0"),
                 str(tmp_path / "zero"))
    assert zero.fingerprint["weights_sha256"] == plain.fingerprint["weights_sha256"]
    assert zero.fingerprint["teacher"] is None


@pytest.fixture(scope="module")
def distilled(parent, tmp_path_factory):
    """A child warm-started from the parent, distilled from it (weight 0.8), and its undistilled twin."""
    out = {}
    for name, weight in (("distilled", 0.8), ("undistilled", 0.0)):
        config = exp(parent["data"], f"train.warm_start_from={parent['export']}",
                     f"train.distill_from={parent['run']}", f"train.distill_weight={weight}",
                     "train.learning_rate=0.01")
        out[name] = train(config, str(tmp_path_factory.mktemp(name)), predict_eval=True)
    return out


def test_distillation_pulls_the_child_toward_its_parent(parent, distilled):
    churn = {k: relative_pd(parent["predictions"], r.eval_predictions) for k, r in distilled.items()}
    assert churn["undistilled"] > 0 and churn["distilled"] < 0.7 * churn["undistilled"], churn
    teacher = distilled["distilled"].fingerprint["teacher"]
    assert teacher["weights_sha256"] == parent["digest"] and teacher["weight"] == 0.8
    assert teacher["path"] == parent["run"] and teacher["kind"] == "run"


def test_a_distilled_run_resumes_exactly_and_refuses_another_teacher(parent, distilled, tmp_path):
    teacher = tmp_path / "teacher"
    shutil.copytree(parent["run"], teacher)
    config = exp(parent["data"], f"train.warm_start_from={parent['export']}",
                 f"train.distill_from={teacher}", "train.distill_weight=0.8", "train.learning_rate=0.01")
    train(config, str(tmp_path / "m"), stop_at_step=5)
    resumed = train(config, str(tmp_path / "m"))
    assert resumed.fingerprint["weights_sha256"] == distilled["distilled"].fingerprint["weights_sha256"]
    assert [r["step"] for r in resumed.fingerprint["resumes"]] == [5]
    # Another model at the teacher's path: its weights digest differs from the recorded one.
    train(config, str(tmp_path / "m2"), stop_at_step=3)
    shutil.rmtree(teacher)
    shutil.copytree(resumed.model_dir, teacher)
    with pytest.raises(run_state.ResumeRefused, match="distillation teacher weights"):
        train(config, str(tmp_path / "m2"))
