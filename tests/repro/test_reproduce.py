"""``recsys reproduce`` on real exports: rebuilt bit for bit on a 2-worker local cluster (in process, from
relative paths, after a Ctrl-C and a resume: tests/test_first_hour.py); a changed shard, config field,
library, source commit and worker count each named before training (exit 2); an allowed difference
rebuilt and judged with PD intervals (exit 1)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

from pipelines.synthetic_spec import SyntheticLayout, write_synthetic
from recsys import config as cfg

REPO = pathlib.Path(__file__).resolve().parents[2]
LAYOUT = SyntheticLayout(num_numeric=2, num_categorical=3, num_multi=1, cardinality=30)
SETS = ["train.steps=8", "train.eval_every=8", "train.verbose=0", "data.batch_size=64",
        "data.eval_batch_size=256", "data.shuffle_buffer=256", "train.tensorboard=false",
        "train.backup_every_steps=4", "export.warmup_requests=0", "model.bottom_mlp=[8]",
        "model.top_mlp=[16]"]


def _data(root: pathlib.Path) -> None:
    write_synthetic(str(root / "data"), num_train=1024, num_eval=200, layout=LAYOUT, seed=3)


def make_one(root: pathlib.Path) -> None:
    from recsys.train.trainer import train

    _data(root)
    train(cfg.load("synthetic_small", [f"data.spec_dir={root / 'data'}", *SETS]), str(root / "run"))


def make_two(root: pathlib.Path) -> None:
    from recsys.study.runner import train_replica_on_local_cluster

    _data(root)
    config = cfg.load("synthetic_small", [f"data.spec_dir={root / 'data'}", *SETS,
                                          "train.record_eval_predictions=true"])  # the runner reads them
    train_replica_on_local_cluster(config, str(root / "run"), 2)


def _export(root: pathlib.Path) -> str:
    return json.loads((root / "run" / "fingerprint.json").read_text())["export_path"]


@pytest.fixture(scope="module")
def one(run_once) -> pathlib.Path:
    return run_once("reproduce-one-worker", make_one)


def reproduce(cwd: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "recsys.cli", "reproduce", *args], capture_output=True,
                          text=True, env=env, cwd=str(cwd), timeout=600)


def _copy_export(one: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    copy = tmp_path / "export"
    shutil.copytree(_export(one), copy)
    return copy


def _double_learning_rate(export: pathlib.Path) -> str:
    """Edit the export's config copy; the difference line the check prints for it."""
    path = export / "assets.extra" / "config.yaml"
    d = yaml.safe_load(path.read_text())
    old = d["train"]["learning_rate"]
    d["train"]["learning_rate"] = old * 2
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return f"config: train.learning_rate: {old!r} -> {old * 2!r}"


def _edit_json(path: pathlib.Path, edit) -> None:
    d = json.loads(path.read_text())
    edit(d)
    path.write_text(json.dumps(d))


def test_the_fingerprint_carries_code_devices_and_topology(one):
    fp = json.loads((pathlib.Path(_export(one)) / "assets.extra" / "fingerprint.json").read_text())
    assert fp["num_workers"] == 1 and fp["collective"] == "none"
    assert fp["devices"]["kind"] == "CPU" and fp["devices"]["names"][0]
    assert fp["op_determinism"] is False
    assert len(fp["code"]["source_sha256"]) == 64
    assert fp["config"]["train"]["steps"] == 8 and fp["data"]["stream_version"] >= 1
    # a field left null says why
    for key in ("source_commit", "dirty", "package_version"):
        assert fp["code"][key] is not None or f"code.{key}" in fp["unknown"]


def test_a_changed_shard_is_named_before_training(one, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(one / "data", data)
    shards = sorted((data / "train").iterdir())
    shutil.copyfile(shards[0], shards[1])
    proc = reproduce(tmp_path, _export(one), f"--data={data}", "--output=out")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"data: shard train/{shards[1].name} sha256 differs" in proc.stdout
    assert "--allow data" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_changed_config_field_library_and_commit_are_named(one, tmp_path):
    export = _copy_export(one, tmp_path)
    extra = export / "assets.extra"
    changed = _double_learning_rate(export)

    def edit(fp):
        fp["libraries"]["tensorflow"] = "2.20.0"
        fp["code"].update(source_commit="abc1234567890", source_sha256="0" * 64, dirty=False)

    _edit_json(extra / "fingerprint.json", edit)
    proc = reproduce(tmp_path, str(export), f"--data={one / 'data'}", "--check_only")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert changed in proc.stdout
    assert "libraries: tensorflow 2.20.0 → " in proc.stdout
    assert "code: source commit abc123456789 → " in proc.stdout
    assert "--allow code,config,libraries" in proc.stderr
    allowed = reproduce(tmp_path, str(export), f"--data={one / 'data'}", "--check_only",
                        "--allow=config,libraries,code")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr


def test_a_changed_worker_count_is_named_before_training(one, tmp_path):
    proc = reproduce(tmp_path, _export(one), f"--data={one / 'data'}", "--workers=2")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "workers: workers 1 → 2" in proc.stdout
    assert "workers: collective none → AUTO" in proc.stdout
    assert not any(tmp_path.iterdir())


def test_an_allowed_difference_is_rebuilt_and_judged_with_intervals(one, tmp_path):
    export = _copy_export(one, tmp_path)
    changed = _double_learning_rate(export)
    proc = reproduce(tmp_path, str(export), f"--data={one / 'data'}", "--output=out", "--allow=config",
                     "--draws=200")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "not reproduced: the weights differ" in proc.stdout
    assert "relative PD" in proc.stdout and "95% CI" in proc.stdout
    assert changed in proc.stdout
    v = json.loads((tmp_path / "out" / "certificate.json").read_text())["verdict"]
    assert v["reproduced"] is False and v["examples"] == 200
    for metric in ("relative_pd", "absolute_pd", "flip_rate"):
        m = v[metric]
        assert 0 <= m["ci_lower"] <= m["estimate"] <= m["ci_upper"]
    assert v["relative_pd"]["estimate"] > 0
    assert "not reproduced" in (tmp_path / "out" / "certificate.md").read_text()


@pytest.fixture(scope="module")
def child(one, run_once) -> pathlib.Path:
    """A model warm-started from ``one``'s run."""
    def make(root: pathlib.Path) -> None:
        from recsys.train.trainer import train

        train(cfg.load("synthetic_small", [f"data.spec_dir={one / 'data'}", *SETS,
                                           f"train.warm_start_from={one / 'run'}"]), str(root / "run"))

    return run_once("reproduce-child", make)


def test_a_warm_started_export_needs_the_recorded_parent(one, child, tmp_path):
    export = _export(child)
    recorded = reproduce(tmp_path, export, f"--data={one / 'data'}", "--check_only")
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    wrong = reproduce(tmp_path, export, f"--data={one / 'data'}", f"--parent={export}")
    assert wrong.returncode == 2, wrong.stdout + wrong.stderr
    assert "are not the recorded parent's" in wrong.stderr and "refused" in wrong.stderr
    # the parent's export holds the recorded parent's weights: a parent the user supplies
    supplied = reproduce(tmp_path, export, f"--data={one / 'data'}", f"--parent={_export(one)}",
                         "--output=out")
    assert supplied.returncode == 0, supplied.stdout + supplied.stderr
    assert "reproduced bit for bit" in supplied.stdout
    rebuilt = json.loads((tmp_path / "out" / "model" / "fingerprint.json").read_text())
    assert rebuilt["parent"]["path"] == _export(one) and rebuilt["parent"]["kind"] == "export"


@pytest.mark.slow
def test_two_worker_export_is_rebuilt_bit_for_bit_on_the_local_cluster(run_once, tmp_path):
    two = run_once("reproduce-two-workers", make_two)
    proc = reproduce(tmp_path, _export(two), f"--data={two / 'data'}", "--output=out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reproduced bit for bit" in proc.stdout
    cert = json.loads((tmp_path / "out" / "certificate.json").read_text())
    assert cert["workers"] == 2 and cert["verdict"]["reproduced"] is True
    assert os.path.isdir(tmp_path / "out" / "workers")  # the local cluster's worker logs
