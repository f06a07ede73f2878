"""A study run again on its own --output: the same experiment and settings is a no-op that says so,
another is refused naming the first difference (as ``recsys train`` treats a finished run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from recsys.cli import exits
from recsys.config import Experiment, loading
from recsys.settings.study import StudySettings
from recsys.study import dashboards, rerun, runner


def test_differences_name_experiment_keys_then_the_study_settings():
    saved = {"config": {"train": {"steps": 60, "eval_every": 30}, "name": "x"},
             "options": {"replicas": 2, "base_seed": 0, "sources": ["seed", "order"]}}
    now = json.loads(json.dumps(saved))
    assert rerun.differences(saved, now) == []
    now["config"]["train"]["steps"] = 40
    now["options"].update(replicas=3, base_seed=1)
    assert rerun.differences(saved, now) == ["train.steps: 60 -> 40", "study.replicas: 2 -> 3",
                                              "study.seed: 0 -> 1"]  # --seed, the flag's name


def test_no_finished_study_is_none(tmp_path):
    settings = StudySettings(replicas=2, activations=("relu",), output=str(tmp_path))
    assert rerun.finished_study(str(tmp_path / runner.RESULTS_JSON), Experiment(), settings.options()) is None


def _study(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recsys.cli", "study", *args], capture_output=True,
                          text=True, timeout=600)


def test_a_finished_study_run_again_is_a_no_op_and_another_config_is_refused(small_base, tmp_path):
    out = tmp_path / "study"
    base = small_base()
    settings = StudySettings(replicas=2, activations=("relu",), patience=0, output=str(out))
    first = runner.run_study(base, settings.options(title=base.name), str(out), sections={"study": settings})
    results = out / runner.RESULTS_JSON
    written = results.stat().st_mtime_ns
    replica = out / "runs" / "relu" / "replica_0"
    trained = sorted(os.listdir(replica))
    # The study's own resolved config reruns it: nothing trains, the finding and the report are printed.
    config = str(out / loading.RESOLVED_FILENAME)
    again = _study(f"--config={config}")
    assert again.returncode == exits.OK, again.stderr[-3000:]
    assert (f"{out} already holds this study, finished with 1 x 2 replicas trained; nothing to do "
            "(--overwrite starts over)") in again.stderr
    assert "replica 1/2" not in again.stderr  # nothing trained
    assert f"report: {out / 'results.md'}" in again.stdout
    assert f"  then open {dashboards.open_url()} (smoothing 0; " in again.stdout  # charts of few points
    assert again.stdout.strip().splitlines()[-1] == "Finding: Only `relu` was measured: nothing to compare."
    assert results.stat().st_mtime_ns == written and sorted(os.listdir(replica)) == trained
    # Library callers get the saved results.
    assert runner.run_study(base, settings.options(title=base.name), str(out))["variants"] == \
        json.loads(json.dumps(first["variants"]))
    # Another experiment or other settings: refused before training, naming the first difference.
    other = _study(f"--config={config}", "--set=train.steps=40", "--replicas=3")
    assert other.returncode == exits.FAILED
    assert other.stderr.strip() == (
        f"recsys study: {out} holds a finished study of another config or settings: train.steps: 60 -> 40 "
        "(and 1 more); choose another --output or pass --overwrite")
    assert results.stat().st_mtime_ns == written and sorted(os.listdir(replica)) == trained
    with pytest.raises(FileExistsError, match=r"study.replicas: 2 -> 3; choose another --output"):
        runner.run_study(base, StudySettings(replicas=3, activations=("relu",), patience=0,
                                             output=str(out)).options(title=base.name), str(out))
