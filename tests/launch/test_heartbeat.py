"""The heartbeat file format and the Keras callback (a tiny model, one process, with BackupAndRestore)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from recsys.train import heartbeat


def test_write_read_and_line_round_trip(tmp_path):
    path = str(tmp_path / "hb")
    assert heartbeat.read_heartbeat(path) is None
    beat = heartbeat.write_heartbeat(path, 42, "train")
    assert heartbeat.read_heartbeat(path) == beat and beat.step == 42 and beat.pid == os.getpid()
    assert os.listdir(tmp_path) == ["hb"]  # the temporary file was renamed into place
    (tmp_path / "hb").write_text("{not json")
    assert heartbeat.read_heartbeat(path) is None
    assert heartbeat.parse_line(heartbeat.format_line(120, "begin")) == (120, "begin")
    assert heartbeat.parse_line("recsys-heartbeat step=x") is None
    assert heartbeat.parse_line("Epoch 1/2") is None


def test_no_callback_without_the_environment_variable():
    assert heartbeat.heartbeat_callback({}) is None


class _Interrupt(Exception):
    pass


def test_callback_reports_global_steps_and_the_restored_step(tmp_path, capfd):
    from recsys.compat import keras

    path = str(tmp_path / "worker-0.heartbeat")
    env = {heartbeat.HEARTBEAT_FILE_ENV: path, heartbeat.HEARTBEAT_EVERY_ENV: "2"}
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)

    def model() -> keras.Model:
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.layers.Dense(1, input_shape=(3,))])
        m.compile(optimizer="sgd", loss="mse")
        return m

    class StopInEpoch3(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise _Interrupt()

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(_Interrupt):  # 2 epochs of 4 steps (batch 16) done and backed up, then a "crash"
        model().fit(x, y, batch_size=16, epochs=4, verbose=0,
                    callbacks=[backup, heartbeat.heartbeat_callback(env), StopInEpoch3()])
    first = capfd.readouterr().err
    beats = [heartbeat.parse_line(line) for line in first.splitlines()]
    beats = [b for b in beats if b is not None]
    assert beats == [(0, "begin"), (2, "train"), (4, "train"), (6, "train"), (8, "train")]
    assert heartbeat.read_heartbeat(path).step == 8

    model().fit(x, y, batch_size=16, epochs=4, verbose=0,
                callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
                           heartbeat.heartbeat_callback(env)])
    beats = [heartbeat.parse_line(line) for line in capfd.readouterr().err.splitlines()]
    beats = [b for b in beats if b is not None]
    assert beats[0] == (8, "begin")  # resumed after the two backed-up epochs, not at step 0
    assert beats[-1] == (16, "end")
    with open(path) as fh:
        assert json.load(fh)["phase"] == "end"
