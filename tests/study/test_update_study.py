"""`recsys study --sources update` for real: time windows, warm-started chains, distillation, the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.study.conftest import OVERRIDES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def windowed_data(run_once) -> str:
    """4,000 synthetic rows in 3 row-order windows, through the real `recsys preprocess --windows 3`."""
    def make(root) -> None:
        subprocess.run([sys.executable, "-m", "recsys.cli", "preprocess", "--source=synthetic", "--rows=4000",
                        "--windows=3", f"--output={root / 'windowed'}"], check=True, capture_output=True,
                       timeout=300)

    return str(run_once("study-windowed-data", make) / "windowed")


def test_update_study_from_the_command_line(windowed_data, tmp_path):
    """Typed as a user types it: relative --output, another working directory, one distilled variant."""
    sets = [a for o in OVERRIDES for a in ("--set", o)]
    proc = subprocess.run(
        [sys.executable, "-m", "recsys.cli", "study", "--config=synthetic_small", *sets,
         "--set", "train.steps=40", "--set", "train.eval_every=0", "--set", f"data.spec_dir={windowed_data}",
         "--sources=update", "--replicas=2", "--activations=relu", "--distill_weight=0.5",
         "--update_steps=20", "--output=out/upd", "--bootstrap_draws=50"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "Finding: update v2->v3: `relu` churn" in proc.stdout
    out = tmp_path / "out" / "upd"
    payload = json.loads((out / "results.json").read_text())
    assert payload["kind"] == "update" and payload["windows"] == 3 and payload["chains"] == 2
    assert payload["variants"] == ["relu", "relu+distill(0.5)"]
    assert [u["update"] for u in payload["updates"]] == ["v1->v2", "v2->v3"]
    for update in payload["updates"]:
        for c in update["variants"]:
            assert c["relative_pd"]["estimate"] > 0  # a new window changes the model
            ci = c["relative_pd"]
            assert ci["ci_lower"] <= ci["estimate"] <= ci["ci_upper"]
    # Every version of each chain is a real run: a warm-started child names its parent.
    runs = out / "runs"
    v2 = json.loads((runs / "relu" / "chain_1" / "v2" / "fingerprint.json").read_text())
    v1 = json.loads((runs / "relu" / "chain_1" / "v1" / "fingerprint.json").read_text())
    assert v2["parent"]["weights_sha256"] == v1["weights_sha256"]
    # The distilled chain starts from the undistilled v1 (shared) and trains its own v2 with a teacher.
    distilled = [p for p in runs.iterdir() if p.name != "relu"]
    assert len(distilled) == 1 and sorted(os.listdir(distilled[0] / "chain_0")) == ["v2", "v3"]
    md = (out / "results.md").read_text()
    assert "#### Update v1->v2 (window 1)" in md and "v3 vs retrain" in md
    # the retrain differs from the warm-started version
    retrain = {c["variant"]: c for c in payload["retrain"]["variants"]}
    assert retrain["relu"]["relative_pd"]["estimate"] > 0
    assert (out / "frontier.png").exists()
    assert np.isfinite(payload["versions"][-1]["variants"][0]["auc"]["estimate"])
