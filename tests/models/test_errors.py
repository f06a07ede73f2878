"""Bad configs fail early with messages that say what is wrong and how to fix it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from recsys import config as cfg
from recsys.train import check_config, train


def _exp(*overrides):
    return cfg.load("synthetic_small", list(overrides))


def test_unknown_activation(tiny_data):
    root, _ = tiny_data
    with pytest.raises(ValueError, match=r"model.activation='nope\(beta=1\)'"):
        check_config(_exp(f"data.spec_dir={root}", "model.activation=nope(beta=1)"))
    with pytest.raises(ValueError, match="model.top_activation"):
        check_config(_exp(f"data.spec_dir={root}", "model.top_activation=swishy"))


def test_missing_feature_spec(tmp_path):
    with pytest.raises(FileNotFoundError, match="feature spec not found.*recsys preprocess"):
        train(_exp(f"data.spec_dir={tmp_path}"), str(tmp_path / "m"))
    with pytest.raises(ValueError, match="data.spec_dir is not set"):
        check_config(_exp("data.spec_dir="))


def test_missing_shards(tiny_data, tmp_path):
    _, spec = tiny_data
    spec.save(str(tmp_path))  # a spec without its shards next to it
    with pytest.raises(FileNotFoundError, match="no train shards match"):
        train(_exp(f"data.spec_dir={tmp_path}"), str(tmp_path / "m"))


def test_bad_sizes_and_optimizer(tiny_data):
    root, _ = tiny_data
    with pytest.raises(ValueError, match="train.steps must be >= 1"):
        check_config(_exp(f"data.spec_dir={root}", "train.steps=0"))


def test_cli_reports_bad_key_and_bad_path(repo_root, tmp_path):
    cmd = [sys.executable, "-m", "recsys.cli", "train", "--model_dir", str(tmp_path)]
    bad_key = subprocess.run(
        cmd + ["--config", "synthetic_small", "--set", "model.actvation=relu"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=repo_root,
    )
    assert bad_key.returncode != 0
    assert "unknown config key 'model.actvation'" in bad_key.stderr
    assert "model.activation" in bad_key.stderr
    bad_path = subprocess.run(
        cmd + ["--config", str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=repo_root,
    )
    assert bad_path.returncode != 0 and "config file not found" in bad_path.stderr
