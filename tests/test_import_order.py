"""Keras 2 whatever project module a process imports first (the bootstrap cannot be broken by order).

TensorFlow picks Keras 2 or 3 once, at its import, from TF_USE_LEGACY_KERAS. The top-level packages set
it when first imported, so the first project import of any module selects Keras 2 before TensorFlow
loads. Every test here runs without the variable in the environment, as from a user's shell.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("recsys", "pipelines", "serving")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["PYTHONPATH"] = str(REPO)
    return env


def _modules() -> list[str]:
    """Every module of the three packages (by file, so nothing is imported to list them)."""
    out = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            if parts[-1] == "__main__":  # running it is the command, not an import
                continue
            out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def test_every_module_imported_first_asks_for_tensorflow_with_keras2_selected():
    modules = _modules()
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "import_order_probe.py"), *modules],
                          capture_output=True, text=True, env=_env(), cwd=str(REPO), timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(report) == sorted(modules)
    asking = {m: v for m, v in report.items() if v != "not requested"}
    # The probe must see the modules that load TensorFlow at import, or it could not fail.
    assert {"recsys.compat", "serving.servable", "serving.codec", "recsys.models.ranking"} <= set(asking)
    assert {m: v for m, v in asking.items() if v != "1"} == {}


# A module of each package first, then whatever loads TensorFlow, then the training code's Keras.
FIRST_IMPORTS = {
    "serving": "import serving.servable",
    "pipelines": "import pipelines.columnar, tensorflow",
    "tfrs": "import serving.summaries, tensorflow_recommenders",
}
CHECK = ("; from recsys.compat import tf, keras; import tf_keras; "
         "print(tf.keras.layers.Dense is tf_keras.layers.Dense is keras.layers.Dense)")


@pytest.fixture(scope="module")
def real_imports() -> dict[str, subprocess.CompletedProcess]:
    """Each first import in its own interpreter with real TensorFlow, two at a time."""
    out: dict[str, subprocess.CompletedProcess] = {}
    names = list(FIRST_IMPORTS)
    for i in range(0, len(names), 2):
        procs = {n: subprocess.Popen([sys.executable, "-c", FIRST_IMPORTS[n] + CHECK], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=_env(), cwd=str(REPO))
                 for n in names[i:i + 2]}
        for n, p in procs.items():
            stdout, stderr = p.communicate(timeout=600)
            out[n] = subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize("first", sorted(FIRST_IMPORTS))
def test_training_code_gets_keras2_after_another_package_loaded_tensorflow(real_imports, first):
    proc = real_imports[first]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-1] == "True"
