"""Expected failures are one line, ``recsys <name>: <reason>``, with the documented exit code
(docs/architecture.md, recsys/cli/exits.py) and no traceback: real commands, bad input."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from recsys.cli import exits
from recsys.train.run_state import EXIT_REFUSED

REPO = pathlib.Path(__file__).resolve().parents[2]


def recsys(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "recsys.cli", *args], capture_output=True, text=True,
                          env=env, cwd=str(cwd), timeout=180)


CASES = [
    # usage errors: 2
    (["train", "--config", "synthetic_small", "--set", "trian.steps=3", "--print_config"], 2,
     "recsys train: ", "did you mean"),
    (["study", "--config", "synthetic_small", "stray"], 2, "recsys study: unexpected arguments", "stray"),
    (["demo", "stray"], 2, "recsys demo: unexpected arguments", ""),
    (["activations", "--show", "smelu(beta=-1)"], 2, "recsys activations: ", "beta"),
    (["query", "--no_such_flag"], 2, "recsys query: ", "no_such_flag"),
    (["preprocess", "--source=criteo", "--output=o"], 2, "recsys preprocess: ", "needs --input"),
    # the command failed: 1
    (["plan", "--config", "synthetic_small", "--set", "data.spec_dir=/no/such/dir"], 1, "recsys plan: ", ""),
    (["submit", "--config", "synthetic_small", "--set", "data.spec_dir=/no/such/dir", "--model_dir", "m"], 1,
     "recsys submit: no feature_spec.json", ""),
    (["rows", "--data", "/no/such/dir", "--output", "rows.jsonl"], 1, "recsys rows: ", ""),
    (["train", "--config", "synthetic_small", "--set", "data.spec_dir=/no/such/dir", "--model_dir", "m"], 1,
     "recsys train: ", "/no/such/dir"),
]


@pytest.mark.parametrize("args, code, prefix, words", CASES, ids=[" ".join(c[0][:2]) for c in CASES])
def test_a_bad_input_is_one_line_with_the_documented_code(tmp_path, args, code, prefix, words):
    proc = recsys(*args, cwd=tmp_path)
    assert proc.returncode == code, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(prefix) and words in last, proc.stderr[-3000:]
    reason = last.split(": ", 1)[1]
    assert proc.stderr.count(reason) == 1, proc.stderr[-3000:]  # said once


def test_the_codes_are_the_documented_ones():
    assert (exits.OK, exits.FAILED, exits.USAGE, exits.REFUSED_RESUME) == (0, 1, 2, EXIT_REFUSED)
    text = (REPO / "docs" / "architecture.md").read_text()
    for row in ("| 0 | done |", "| 1 | the command failed or refused |", "| 2 | a usage error |",
                "| 78 | the run in `--model_dir` will not resume", "| 130, 143 | interrupted"):
        assert row in text
