"""Every public module imports first in a fresh process (TFRS only ever sees Keras 2)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

MODULES = ["recsys.models.interaction", "recsys.models.ranking", "recsys.export"]


@pytest.mark.parametrize("module", MODULES)
def test_imports_first_in_a_fresh_process(module, repo_root):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    proc = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=repo_root,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
