"""`recsys demo` in a reduced mode: every stage runs for real, leaves its outputs; nothing keeps running."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.noise import noise_lines


@pytest.mark.slow
def test_demo_end_to_end_reduced(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "recsys.cli", "demo", f"--output={out}", "--rows=3000", "--steps=20",
         "--eval_every=10", "--query_rows=128"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    for n in range(1, 8):
        assert f"=== [{n}/7]" in text
    # Beam output with its feature spec; the study's table, plot and TensorBoard data.
    spec = json.loads((out / "data" / "feature_spec.json").read_text())
    assert spec["counts"]["read"] == 3000
    results = json.loads((out / "study" / "results.json").read_text())
    assert [v["variant"] for v in results["variants"]] == ["relu", "smelu(beta=1)"]
    assert all(v["pairs"] == 1 for v in results["variants"])
    assert (out / "study" / "frontier.png").stat().st_size > 5000
    # Every replica ran on the 2-worker local cluster and was exported as a version.
    for variant in ("relu", "smelu_beta_1"):
        assert sorted(os.listdir(out / "models" / variant)) == ["1", "2"]
        assert (out / "study" / "runs" / variant / "replica_0" / "workers").is_dir()
    # gRPC query answered with probabilities; the monitor measured PD between served replicas.
    probs = [json.loads(line)["probability"] for line in text.splitlines()
             if line.startswith('{"probability"')]
    assert len(probs) == 5 and all(0.0 < p < 1.0 for p in probs)
    online = re.findall(r"online relative PD between served replicas of (\S+) \(128 rows\): ([0-9.]+)%", text)
    assert [name for name, _ in online] == ["relu", "smelu_beta_1"]
    assert all(float(value) > 0 for _, value in online)
    assert "tensorboard --logdir" in text and "| `smelu(beta=1)` | 2 |" in text
    # Quiet by default (recsys/quiet.py): no TensorFlow / CUDA / oneDNN / Beam start-up chatter.
    assert noise_lines(proc.stdout + proc.stderr) == [], noise_lines(proc.stdout + proc.stderr)[:10]
    assert noise_lines((out / "server.log").read_text()) == []
    # The server the demo started is gone.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(out / "models.config") not in ps
