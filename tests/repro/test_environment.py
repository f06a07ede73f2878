"""The code version a fingerprint records: commit and dirty flag in a git checkout, the source digest
always, and the reason for every field that cannot be known."""

from __future__ import annotations

import pathlib
import subprocess

from recsys.repro.environment import code_version, collective, source_digest


def _tree(root: pathlib.Path) -> None:
    for package in ("recsys", "pipelines", "serving"):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text(f'"""{package}"""\n')
    (root / "recsys" / "__pycache__").mkdir()
    (root / "recsys" / "__pycache__" / "x.py").write_text("ignored\n")


def _git(root: pathlib.Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_outside_a_checkout_the_commit_is_null_with_a_reason_and_the_digest_follows_the_sources(tmp_path):
    _tree(tmp_path)
    code, unknown = code_version(str(tmp_path))
    assert code["source_commit"] is None and code["dirty"] is None
    assert "not a git checkout" in unknown["code.source_commit"]
    assert "code.dirty" in unknown
    before = code["source_sha256"]
    assert before == source_digest(str(tmp_path))
    (tmp_path / "recsys" / "__pycache__" / "x.py").write_text("still ignored\n")
    (tmp_path / "notes.py").write_text("outside the packages\n")
    assert source_digest(str(tmp_path)) == before
    (tmp_path / "serving" / "__init__.py").write_text('"""changed"""\n')
    assert source_digest(str(tmp_path)) != before


def test_in_a_checkout_the_commit_and_dirty_flag_are_recorded(tmp_path):
    _tree(tmp_path)
    (tmp_path / ".gitignore").write_text("__pycache__/\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".gitignore", "recsys", "pipelines", "serving")
    _git(tmp_path, "commit", "-q", "-m", "sources")
    code, unknown = code_version(str(tmp_path))
    assert code["source_commit"] == _git(tmp_path, "rev-parse", "HEAD") and code["dirty"] is False
    assert "code.source_commit" not in unknown and "code.dirty" not in unknown
    (tmp_path / "README").write_text("not a source file\n")
    assert code_version(str(tmp_path))[0]["dirty"] is False
    (tmp_path / "pipelines" / "__init__.py").write_text('"""edited"""\n')
    assert code_version(str(tmp_path))[0]["dirty"] is True
    _git(tmp_path, "checkout", "-q", "--", "pipelines")
    (tmp_path / "recsys" / "new.py").write_text("untracked, importable\n")
    assert code_version(str(tmp_path))[0]["dirty"] is True


def test_the_collective_is_none_in_process():
    assert collective({"determinism": {"collective": "RING"}}, 1) == "none"
    assert collective({"determinism": {"collective": "RING"}}, 2) == "RING"
