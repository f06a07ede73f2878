"""The one atomic-write helper: whole files or nothing, and no temporary left behind."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from pipelines import atomic


def test_write_json_and_text_replace_whole_files(tmp_path):
    path = str(tmp_path / "sub" / "f.json")
    atomic.write_json(path, {"a": 1})
    assert json.loads(pathlib.Path(path).read_text(encoding="utf-8")) == {"a": 1}
    atomic.write_text(path, "second")
    assert pathlib.Path(path).read_text(encoding="utf-8") == "second"
    assert sorted(os.listdir(tmp_path / "sub")) == ["f.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "f.txt")
    atomic.write_text(path, "old")
    with pytest.raises(RuntimeError), atomic.atomic_open(path) as fh:
        fh.write("half")
        raise RuntimeError("killed mid-write")
    assert pathlib.Path(path).read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_write_with_keeps_the_suffix_a_writer_needs(tmp_path):
    np = pytest.importorskip("numpy")
    atomic.write_with(str(tmp_path / "a.npz"), lambda fh: np.savez_compressed(fh, x=np.arange(3)),
                      suffix=".npz")
    assert os.listdir(tmp_path) == ["a.npz"]
    with np.load(tmp_path / "a.npz") as z:
        assert z["x"].tolist() == [0, 1, 2]


def test_only_whole_file_modes():
    with pytest.raises(ValueError, match="whole files"), atomic.atomic_open("x", "a"):
        pass


def test_files_get_the_mode_open_would_give_and_keep_their_own(tmp_path):
    """mkstemp's 0600 would hide a spec or config from a server running as another user."""
    umask = os.umask(0o022)
    try:
        fresh = atomic.write_text(str(tmp_path / "fresh"), "x")
        assert os.stat(fresh).st_mode & 0o777 == 0o644
        os.chmod(fresh, 0o640)
        atomic.write_text(fresh, "y")
        assert os.stat(fresh).st_mode & 0o777 == 0o640
    finally:
        os.umask(umask)


def test_a_liveness_file_skips_the_flush_but_not_the_atomic_rename(tmp_path):
    path = str(tmp_path / "heartbeat")
    atomic.write_json(path, {"step": 1}, indent=None, durable=False)
    atomic.write_json(path, {"step": 2}, indent=None, durable=False)
    assert pathlib.Path(path).read_text(encoding="utf-8") == '{"step": 2}\n'
    assert os.listdir(tmp_path) == ["heartbeat"]
