"""Shared by the study tests: one small synthetic dataset (preprocessed once) and a small model."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

from recsys.config import Experiment, loading

OVERRIDES = [
    "train.steps=60", "train.eval_every=30", "train.verbose=0", "train.steps_per_execution=10",
    "data.batch_size=256", "data.eval_batch_size=1024", "data.shuffle_buffer=2048",
    "model.embedding_dim=4", "model.bottom_mlp=[16,4]", "model.top_mlp=[16,8]", "model.cross_layers=1",
    "train.checkpoint=false",
]


@pytest.fixture(scope="session")
def data_dir(run_once) -> str:
    """4,000 synthetic rows through the real `recsys preprocess` (once per session, for every worker)."""
    def make(root) -> None:
        subprocess.run([sys.executable, "-m", "recsys.cli", "preprocess", "--source=synthetic", "--rows=4000",
                        f"--output={root / 'synthetic'}"], check=True, capture_output=True, timeout=300)

    return str(run_once("study-data", make) / "synthetic")


@pytest.fixture
def small_base(data_dir) -> Callable[..., Experiment]:
    """``small_base(*overrides)``: the small study experiment on ``data_dir``."""
    return lambda *extra: loading.load("synthetic_small", [*OVERRIDES, f"data.spec_dir={data_dir}", *extra])
