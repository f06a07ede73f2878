"""BackupAndRestore: a run killed after its first evaluation period resumes from there."""

from __future__ import annotations

import os

import pytest

from recsys import config as cfg
from recsys.compat import keras
from recsys.train import train


class Crash(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("simulated preemption")


def test_resumes_after_a_crash(tiny_data, tmp_path):
    root, _ = tiny_data
    exp = cfg.load(
        "synthetic_small",
        [
            f"data.spec_dir={root}",
            "train.steps=40",
            "train.eval_every=20",
            "train.verbose=0",
            "data.batch_size=256",
            "export.enabled=false",
            "train.tensorboard=false",
        ],
    )
    with pytest.raises(RuntimeError, match="simulated preemption"):
        train(exp, str(tmp_path), callbacks=[Crash()])
    assert os.listdir(tmp_path / "backup")  # the state after epoch 1 is kept
    result = train(exp, str(tmp_path))
    assert len(result["history"]["loss"]) == 1  # only epoch 2 ran
    assert result["eval"]["examples"] == 3000
    assert not os.path.exists(tmp_path / "backup") or not os.listdir(tmp_path / "backup")
