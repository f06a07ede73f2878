"""RunDir: one absolute root, the backup seen without TensorFlow, clear() removing only run outputs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from recsys.train.run_dir import RUN_OUTPUTS, NotARun, RunDir


def test_the_root_is_absolute_whatever_form_the_path_had(tmp_path, monkeypatch):
    (tmp_path / "a" / "run").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a")
    want = str(tmp_path / "a" / "run")
    assert RunDir("run").root == want
    assert RunDir("../a/run").root == want
    assert RunDir(tmp_path / "a" / "run").backup == os.path.join(want, "backup")
    monkeypatch.chdir(tmp_path)
    assert RunDir("a/./run/").root == want


def test_has_backup_reads_the_checkpoint_index_written_by_tensorflow(tmp_path):
    from recsys.compat import tf

    run_dir = RunDir(tmp_path / "m")
    assert not run_dir.has_backup() and run_dir.backup_step() is None
    os.makedirs(run_dir.backup)
    (tmp_path / "m" / "backup" / "checkpoint").write_text("")  # an empty index names no state
    assert not run_dir.has_backup() and run_dir.backup_step() is None
    os.unlink(os.path.join(run_dir.backup, "checkpoint"))  # (TensorFlow refuses an empty index)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)), run_dir.backup, 2)
    manager.save(checkpoint_number=5)
    assert run_dir.has_backup() and run_dir.backup_step() == 5
    manager.save(checkpoint_number=12)  # the index names the latest save (the one before is kept)
    assert run_dir.backup_step() == 12


def test_has_backup_needs_no_tensorflow(tmp_path):
    code = ("import sys; from recsys.train.run_dir import RunDir; "
            f"print(RunDir({str(tmp_path)!r}).has_backup(), 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.stdout.split() == ["False", "False"]


def test_fingerprint_round_trip_and_unreadable_as_none(tmp_path):
    run_dir = RunDir(tmp_path / "m")
    assert run_dir.read_fingerprint() is None
    run_dir.write_fingerprint({"weights_sha256": "ab", "final_step": 3})
    assert run_dir.read_fingerprint() == {"weights_sha256": "ab", "final_step": 3}
    (tmp_path / "m" / "fingerprint.json").write_text("{torn")
    assert run_dir.read_fingerprint() is None


def test_clear_removes_only_what_it_lists(tmp_path):
    run_dir = RunDir(tmp_path)
    for name in RUN_OUTPUTS:
        if "." in name:
            (tmp_path / name).write_text("x")
        else:
            (tmp_path / name / "sub").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "submit").mkdir()
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    os.rmdir(tmp_path / "export" / "sub")
    os.rmdir(tmp_path / "export")
    os.symlink(outside, tmp_path / "export")  # a link is removed, not followed
    run_dir.clear()
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "submit"]
    assert (outside / "keep").read_text() == "keep"


def test_overwrite_refuses_a_directory_without_a_run_and_deletes_nothing(tmp_path):
    from recsys.train import run_state

    (tmp_path / "config.yaml").write_text("my own config")
    (tmp_path / "evals").mkdir()
    run_dir = RunDir(tmp_path)
    assert not run_dir.holds_run()
    with pytest.raises(NotARun, match=rf"{tmp_path} holds no recsys run .*config\.yaml, evals"):
        run_dir.clear()
    ident = run_state.RunIdentity({"model": {}}, {"digest": "d"}, 1)
    with pytest.raises(run_state.ResumeRefused, match=str(tmp_path)):
        run_state.prepare(str(tmp_path), ident, has_backup=False, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["config.yaml", "evals"]
    assert (tmp_path / "config.yaml").read_text() == "my own config"


def test_overwrite_clears_an_empty_or_absent_directory_and_a_run(tmp_path):
    from recsys.train import run_state

    ident = run_state.RunIdentity({"model": {}}, {"digest": "d"}, 1)
    (tmp_path / "empty" / "submit").mkdir(parents=True)  # only the supervisor's logs
    for name in ("absent", "empty"):
        assert RunDir(tmp_path / name).holds_run()
        assert run_state.prepare(str(tmp_path / name), ident, has_backup=False, overwrite=True)[0] == "new"
    run = tmp_path / "absent"  # now holds a run: its train_state.json
    (run / "config.yaml").write_text("resolved")
    assert RunDir(run).holds_run()
    RunDir(run).clear()
    assert os.listdir(run) == []
