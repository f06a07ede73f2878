"""PD by source (`recsys study --by_source`): one study per source, the source × variant table with
CIs, the heat map, the dominant source, the replicas shared between sources; bad input refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from recsys.settings.study import StudySettings
from recsys.study import sources


def test_bad_decompositions_are_refused():
    with pytest.raises(ValueError, match="unknown"):
        StudySettings(by_source=True, sources=("seed", "gpu"))
    with pytest.raises(ValueError, match="needs --sources"):
        StudySettings(by_source=True, sources=())
    with pytest.raises(ValueError, match="update source is its own study"):
        StudySettings(by_source=True, sources=("seed", "update"))


def test_finding_names_the_dominant_source_and_each_variants_ratio():
    def cell(pd, ratio=None):
        return {"relative_pd": pd, "ci_lower": pd / 2, "ci_upper": pd * 2,
                "pd_ratio": None if ratio is None else {"estimate": ratio}}

    table = {"seed": {"relu": cell(0.2), "smelu": cell(0.18, 0.9)},
             "noise": {"relu": cell(0.01), "smelu": cell(1e-5, 1e-3)}}
    line = sources.finding(table, "relu")
    assert line.startswith("`seed` dominates `relu`'s disagreement (20% relative PD)")
    assert "`smelu`: seed 0.9×, noise 0.001×" in line


def test_by_source_runs_one_study_per_source_and_shares_replica_zero(data_dir, tmp_path):
    out = tmp_path / "decomposition"
    small = ["train.steps=20", "train.eval_every=10", "train.verbose=0", "train.steps_per_execution=10",
             "data.batch_size=256", "data.eval_batch_size=1024", "model.embedding_dim=4",
             "model.bottom_mlp=[16,4]", "model.top_mlp=[16,8]", f"data.spec_dir={data_dir}"]
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    res = subprocess.run([sys.executable, "-m", "recsys.cli", "study", "--config", "synthetic_small",
                          "--replicas", "2", "--activations", "relu,relu*2", "--sources", "seed,order",
                          "--by_source", "--bootstrap_draws", "200", "--output", str(out),
                          "--export_dir", str(tmp_path / "exports"),
                          *[f"--set={o}" for o in small]],
                         capture_output=True, text=True, timeout=900, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    payload = json.loads((out / "results.json").read_text())
    assert payload["sources"] == ["seed", "order"] and payload["variants"] == ["relu", "relu×2"]
    # 2 sources × 2 variants × 2 replicas; replica 0 of each variant is one run in both studies (with
    # noise it would not be: the noise study perturbs replica 0 too).
    assert (payload["replica_slots"], payload["trained_replicas"]) == (8, 6)
    for source in ("seed", "order"):
        study = json.loads((out / source / "results.json").read_text())
        assert study["options"]["sources"] == [source]
        for variant in payload["variants"]:
            cell = payload["table"][source][variant]
            row = next(v for v in study["variants"] if v["variant"] == variant)
            assert cell["relative_pd"] == row["relative_pd_ci"]["estimate"] > 0
            assert cell["ci_lower"] <= cell["relative_pd"] <= cell["ci_upper"]
    # --export_dir reaches the first source's study: its replica 0 is exported, so its cost has the serving
    # latency (and so has the order study's, which reuses that replica 0 and its export).
    for s in ("seed", "order"):
        ens_cost = json.loads((out / s / "results.json").read_text())["variants"][1]["cost"]
        assert set(ens_cost["latency_seconds"]) == {"1", "256"} and ens_cost["latency_ratio"]["1"] > 0
    assert (tmp_path / "exports" / "relu" / "1").is_dir()
    seed_pd, order_pd = (payload["table"][s]["relu"]["relative_pd"] for s in ("seed", "order"))
    dominant = "seed" if seed_pd > order_pd else "order"
    assert payload["finding"].startswith(f"`{dominant}` dominates `relu`'s disagreement")
    text = (out / "results.md").read_text(encoding="utf-8")
    assert "| `seed` |" in text and "| `order` |" in text and "2 of 8 replica slots reused" in text
    assert (out / sources.HEATMAP_PNG).stat().st_size > 1000
    assert f"Finding: {payload['finding']}" in res.stdout
