"""Keras 2 is selected when a project package is first imported, and Keras 3 active anyway fails with a
clear message."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys


def _run(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)


def test_recsys_selects_keras2_before_tensorflow():
    proc = _run("import recsys.compat as c, tf_keras; "
                "print(c.tf.keras.layers.Dense is tf_keras.layers.Dense, c.keras.__version__)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "2.21.0"]


def test_keras3_already_active_fails_at_import_with_what_to_do():
    proc = _run("import tensorflow, recsys.compat")
    assert proc.returncode != 0
    assert "Keras 3" in proc.stderr and "TF_USE_LEGACY_KERAS=1" in proc.stderr


def test_only_the_top_level_packages_set_the_variable(repo_root: pathlib.Path):
    """Each package selects Keras 2 when first imported (tests/test_import_order.py); nothing else does."""
    setters = sorted(
        str(path.relative_to(repo_root))
        for top in ("recsys", "pipelines", "serving")
        for path in (repo_root / top).rglob("*.py")
        if 'environ["TF_USE_LEGACY_KERAS"]' in path.read_text() or
        "environ['TF_USE_LEGACY_KERAS']" in path.read_text() or
        'setdefault("TF_USE_LEGACY_KERAS"' in path.read_text()
    )
    assert setters == ["pipelines/__init__.py", "recsys/__init__.py", "serving/__init__.py"]
