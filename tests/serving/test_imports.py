"""Import rules of serving/: it never imports recsys (the training stack) and serves with Keras blocked."""

from __future__ import annotations

import ast
import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SERVING = REPO / "serving"
MODULES = sorted(str(p.relative_to(REPO)) for p in SERVING.rglob("*.py"))
# Private TensorFlow / Keras API: a TensorFlow upgrade may move or remove any of these.
FORBIDDEN = ("recsys", "tf_keras", "keras", "tensorflow_recommenders")
PRIVATE = ("tensorflow.python", "pywrap_", "._session", "tf_keras.src")


def _imported(source: str) -> list[str]:
    """Every absolute module name ``source`` imports, at any depth (function-level imports too)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return out


@pytest.mark.parametrize("module", MODULES)
def test_serving_never_imports_recsys_or_keras(module):
    bad = [n for n in _imported((REPO / module).read_text()) if n.split(".")[0] in FORBIDDEN]
    assert bad == [], (module, bad)


def test_the_import_check_sees_nested_and_from_imports():
    source = "def f():\n    from recsys.repro import pd\n    import tf_keras\nfrom recsys import compat\n"
    want = ["recsys", "recsys.compat", "recsys.repro", "recsys.repro.pd", "tf_keras"]
    assert sorted(_imported(source)) == want


def test_no_private_tensorflow_api_in_serving_or_recsys():
    hits = []
    for package in ("serving", "recsys"):
        for path in sorted((REPO / package).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                hits += [f"{path.relative_to(REPO)}:{number}: {s}" for s in PRIVATE if s in line]
    assert hits == []


def _serve_with_keras_blocked(*args: str) -> dict:
    """Run tests/serving/keras_blocked_serve.py in a fresh interpreter; its JSON report."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "serving" / "keras_blocked_serve.py"), *args],
        capture_output=True, text=True, env=env, cwd=str(REPO), timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _first_warmup_inputs() -> dict:
    """The inputs of the tiny model's first warm-up record (the request the script sends)."""
    from tensorflow_serving.apis import prediction_log_pb2

    from serving import codec, testing

    log = prediction_log_pb2.PredictionLog.FromString(testing.warmup_records("tiny", 1)[0])
    return {k: codec.to_numpy(v) for k, v in log.predict_log.request.inputs.items()}


def test_serves_with_keras_blocked_and_without_recsys():
    from serving import testing

    report = _serve_with_keras_blocked()
    assert report["recsys_modules"] == []
    assert report["keras_modules"] == []
    assert report["blocked"] is True  # the blocker was in force
    assert "serving_default" in report["signatures"]
    rows = _first_warmup_inputs()
    want = testing.reference(rows["cat"], rows["x1"], rows["x2"], bias=0.0).tolist()
    assert report["grpc"]["probability"] == pytest.approx(want, abs=1e-6)
    assert report["rest"] == pytest.approx(want, abs=1e-6)


CORE = [m for m in MODULES if "/tools/" not in m and not m.endswith("testing.py")]


@pytest.mark.parametrize("module", CORE)
def test_server_core_never_imports_the_tools_or_the_fixtures(module):
    names = _imported((REPO / module).read_text())
    from_serving = [n for n in names if n.startswith("serving")]
    assert [n for n in from_serving if n.startswith(("serving.tools", "serving.testing"))] == [], module
