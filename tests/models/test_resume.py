"""Resume in one process: a run stopped at any step and restarted ends with the uninterrupted run's
weights, also when the latest backup is torn; a finished run is not retrained; refusals name the
difference. (The real multi-process kill matrix is tests/launch/test_exact_resume.py.)"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from recsys import config as cfg
from recsys.train import run_state
from recsys.train.trainer import train

BASE = ["train.steps=24", "train.eval_every=12", "train.verbose=0", "data.batch_size=256",
        "data.shuffle_buffer=1024", "export.enabled=false", "train.tensorboard=false",
        "train.backup_every_steps=5", "train.steps_per_execution=4"]


def _exp(root, *extra: str):
    return cfg.load("synthetic_small", [f"data.spec_dir={root}", *BASE, *extra])


@pytest.fixture(scope="module")
def uninterrupted(tiny_data, tmp_path_factory):
    root, _ = tiny_data
    return train(_exp(root), str(tmp_path_factory.mktemp("full")), predict_eval=True)


def test_stopped_runs_resume_to_identical_weights(tiny_data, tmp_path, uninterrupted):
    root, _ = tiny_data
    exp = _exp(root)
    stopped = train(exp, str(tmp_path), stop_at_step=7)  # mid-way between backups at 5 and 10
    assert stopped.stopped_at == 7 and stopped.fingerprint is None and not stopped.finished
    resumed = train(exp, str(tmp_path), predict_eval=True)
    assert resumed.fingerprint["weights_sha256"] == uninterrupted.fingerprint["weights_sha256"]
    np.testing.assert_array_equal(resumed.eval_predictions, uninterrupted.eval_predictions)
    assert [r["step"] for r in resumed.fingerprint["resumes"]] == [7]
    # The evaluation at step 12 happened after the restart; both evaluations are on disk.
    assert sorted(os.listdir(tmp_path / "evals")) == ["step-000000012.npz", "step-000000024.npz"]


def test_torn_latest_backup_falls_back_to_the_previous_one(tiny_data, tmp_path, uninterrupted, capfd):
    root, _ = tiny_data
    exp = _exp(root)
    train(exp, str(tmp_path), stop_at_step=15)  # the last two backups are kept: 12 (an evaluation), 15
    data_file = next(p for p in (tmp_path / "backup").iterdir() if p.name.startswith("ckpt-15.data"))
    data_file.write_bytes(data_file.read_bytes()[:100])  # a torn write
    resumed = train(exp, str(tmp_path))
    assert "backup" in capfd.readouterr().err
    assert resumed.fingerprint["resumes"][0]["step"] == 12
    assert resumed.fingerprint["weights_sha256"] == uninterrupted.fingerprint["weights_sha256"]


def test_finished_run_is_not_retrained_and_overwrite_starts_over(tiny_data, tmp_path, uninterrupted):
    root, _ = tiny_data
    exp = _exp(root)
    first = train(exp, str(tmp_path))
    again = train(exp, str(tmp_path))
    assert again.already_finished and again.model is None
    assert again.fingerprint["weights_sha256"] == first.fingerprint["weights_sha256"]
    assert again.eval == first.eval
    # Neutral fields (verbosity, backup interval) do not make it a different run.
    neutral = train(_exp(root, "train.verbose=1", "train.backup_every_steps=3"), str(tmp_path))
    assert neutral.already_finished
    fresh = train(exp, str(tmp_path), overwrite=True)
    assert not fresh.already_finished and not fresh.fingerprint["resumes"]
    assert fresh.fingerprint["weights_sha256"] == uninterrupted.fingerprint["weights_sha256"]


def test_refusals_name_what_differs(tiny_data, tmp_path):
    root, _ = tiny_data
    train(_exp(root), str(tmp_path), stop_at_step=6)
    with pytest.raises(run_state.ResumeRefused, match=r"config: model\.activation: 'relu' -> 'gelu'"):
        train(_exp(root, "model.activation=gelu"), str(tmp_path))
    with pytest.raises(run_state.ResumeRefused, match=r"train\.learning_rate: 0\.001 -> 0\.01"):
        train(_exp(root, "train.learning_rate=0.01"), str(tmp_path))
    state = json.loads((tmp_path / "train_state.json").read_text())
    assert state["config"]["model"]["activation"] == "relu" and not state["finished"]
    allowed = train(_exp(root, "train.learning_rate=0.01"), str(tmp_path), allow_resume_change=("config",))
    assert allowed.fingerprint["resumes"][0]["changes"] == ["config"]
    assert any("changed config" in c for c in allowed.fingerprint["bitwise_caveats"])


def test_changed_data_is_refused(tmp_path):
    from pipelines.synthetic_spec import SyntheticLayout, write_synthetic

    layout = SyntheticLayout(num_numeric=2, num_categorical=2, num_multi=0, cardinality=20)
    for seed in (1, 2):
        write_synthetic(str(tmp_path / f"d{seed}"), num_train=600, num_eval=100, layout=layout, seed=seed)
    train(_exp(tmp_path / "d1", "data.batch_size=64"), str(tmp_path / "m"), stop_at_step=3)
    with pytest.raises(run_state.ResumeRefused, match=r"data: .*shard train/part-00000"):
        train(_exp(tmp_path / "d2", "data.batch_size=64"), str(tmp_path / "m"))
    # The same data under another path is the same data: it resumes.
    os.rename(tmp_path / "d1", tmp_path / "moved")
    resumed = train(_exp(tmp_path / "moved", "data.batch_size=64"), str(tmp_path / "m"))
    assert resumed.fingerprint["resumes"][0]["step"] == 3


def test_a_model_dir_held_by_another_job_is_refused_untouched(tiny_data, tmp_path):
    """Another live process holds the model_dir's lock: train() refuses, naming it, writing nothing."""
    import subprocess
    import sys

    root, _ = tiny_data
    code = ("import sys; from recsys.train.run_dir import RunDir; from recsys.train.run_lock import "
            "RunLock; RunLock(RunDir(sys.argv[1])).acquire(wait=0); print('locked', flush=True); "
            "sys.stdin.read()")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=repo))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(run_state.ResumeRefused, match=rf"in use by another job: pid {holder.pid} "):
            train(_exp(root), str(tmp_path), overwrite=True)
        assert os.listdir(tmp_path) == [".lock"]
    finally:
        holder.communicate("")  # end of stdin: it exits, releasing the lock
    assert train(_exp(root), str(tmp_path), stop_at_step=2).stopped_at == 2


def test_a_run_recorded_before_a_new_config_field_still_resumes(tiny_data, tmp_path, uninterrupted):
    """A recsys upgrade adds config fields (data.windows, train.warm_start_from): a run recorded without
    them, now at their defaults, is the same model and resumes bit-exactly;
    a non-default value is a change."""
    root, _ = tiny_data
    train(_exp(root), str(tmp_path), stop_at_step=6)
    path = tmp_path / "train_state.json"
    state = json.loads(path.read_text())
    del state["config"]["data"]["windows"], state["config"]["train"]["warm_start_from"]
    state["config_sha256"] = "recorded-by-an-older-recsys"
    path.write_text(json.dumps(state))
    from recsys.train.fingerprint import config_differences

    new = {**state["config"], "data": {**state["config"]["data"], "windows": [0]}}
    assert config_differences(state["config"], new) == ["data.windows: None -> [0]"]
    resumed = train(_exp(root), str(tmp_path), predict_eval=True)
    assert resumed.fingerprint["weights_sha256"] == uninterrupted.fingerprint["weights_sha256"]


@pytest.mark.parametrize("embedding_optimizer", ["adagrad", "lazy_adam"])
def test_the_embedding_optimizers_slots_resume_exactly(tiny_data, tmp_path, embedding_optimizer):
    """The tables' own optimizer (sparse gradients: only the batch's rows move) keeps its slots and step
    in the backup: stopped mid-way between backups and resumed, the weights equal the uninterrupted run's."""
    root, _ = tiny_data
    exp = _exp(root, f"train.embedding_optimizer={embedding_optimizer}", "train.dense_grad_max_elements=0",
               "train.embedding_learning_rate=0.01")
    full = train(exp, str(tmp_path / "full"), predict_eval=True)
    assert train(exp, str(tmp_path / "stopped"), stop_at_step=7).stopped_at == 7
    resumed = train(exp, str(tmp_path / "stopped"), predict_eval=True)
    assert [r["step"] for r in resumed.fingerprint["resumes"]] == [7]
    assert resumed.fingerprint["weights_sha256"] == full.fingerprint["weights_sha256"]
    np.testing.assert_array_equal(resumed.eval_predictions, full.eval_predictions)


def test_lazy_adam_on_dense_gradient_tables_trains_as_all_adam(tiny_data, tmp_path, uninterrupted):
    """Tables small enough for dense gradients (train.dense_grad_max_elements) get Adam's dense update
    from lazy_adam: the same weights, bit for bit, as Adam for every variable (checkpoint layout aside)."""
    root, _ = tiny_data
    lazy = train(_exp(root, "train.embedding_optimizer=lazy_adam"), str(tmp_path))
    assert lazy.fingerprint["weights_sha256"] == uninterrupted.fingerprint["weights_sha256"]
