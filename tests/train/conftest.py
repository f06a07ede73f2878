"""Shared by the model-update tests (test_warm_start.py, test_distill.py and the two-worker one in
tests/launch): a small data set, one with another vocabulary, and a parent trained once per session."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines.synthetic_spec import SyntheticLayout, write_synthetic
from recsys import config as cfg
from recsys.train.trainer import train

LAYOUT = SyntheticLayout(num_numeric=2, num_categorical=3, num_multi=1, cardinality=30)
SETS = ["train.steps=12", "train.eval_every=6", "train.verbose=0", "data.batch_size=64",
        "data.eval_batch_size=256", "data.shuffle_buffer=256", "train.tensorboard=false",
        "train.backup_every_steps=4", "train.steps_per_execution=2", "export.warmup_requests=0",
        "model.bottom_mlp=[8]", "model.top_mlp=[16]"]


def exp(data: str, *extra: str):
    return cfg.load("synthetic_small", [f"data.spec_dir={data}", *SETS, *extra])


def make_parent(root) -> None:
    """Data (and a second data set with another vocabulary) and a parent trained on the first."""
    write_synthetic(str(root / "data"), num_train=1200, num_eval=300, layout=LAYOUT, seed=5)
    other = SyntheticLayout(num_numeric=2, num_categorical=3, num_multi=1, cardinality=20)
    write_synthetic(str(root / "other"), num_train=600, num_eval=100, layout=other, seed=5)
    train(exp(str(root / "data"), "data.shuffle_buffer=128"), str(root / "parent"))


# Early stopping (test_early_stopping.py and tests/launch/test_early_stop_workers.py): a learning rate high
# enough that the validation AUC peaks early on this small data set (evaluations every 4 steps: 0.572,
# 0.588, 0.655 at step 12, then 0.644, 0.587): with patience 2 the run stops at step 20 of at most 60 and
# keeps step 12's weights.
EARLY = ("train.steps=60", "train.eval_every=4", "train.learning_rate=0.05",
         "data.validation_fraction=0.25", "train.early_stopping_patience=2")
STOP, BEST = 20, 12


def make_early_stopping_data(root) -> None:
    """The early-stopping tests' data set (tests/train/test_early_stopping.py, and on two workers)."""
    write_synthetic(str(root / "data"), num_train=1200, num_eval=300, layout=LAYOUT, seed=5)


@pytest.fixture(scope="module")
def parent(run_once) -> dict:
    """The parent's data, run dir, export, digest, fingerprint and final eval predictions."""
    root = run_once("warm-start-parent", make_parent)
    fp = json.loads((root / "parent" / "fingerprint.json").read_text())
    with np.load(root / "parent" / "evals" / "step-000000012.npz") as z:
        predictions = z["predictions"]
    return {"root": root, "data": str(root / "data"), "run": str(root / "parent"),
            "export": fp["export_path"], "digest": fp["weights_sha256"], "fp": fp,
            "predictions": predictions}
