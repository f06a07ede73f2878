"""A small real study on synthetic data: files, pairs, PD exactly 0 for identical replicas, plots, TB."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from recsys.study import runner
from recsys.study.variants import parse_sources, plan_replica, split_specs


def test_split_specs_and_sources():
    assert split_specs("relu, smelu(beta=0.5),gsmelu(alpha=1, beta=2),SiLU") == [
        "relu", "smelu(beta=0.5)", "gsmelu(beta=2.0)", "swish"]  # canonical: alpha=1 is the default
    with pytest.raises(ValueError, match="unbalanced"):
        split_specs("smelu(beta=0.5")
    with pytest.raises(ValueError, match=r"listed twice: smelu\(beta=1\) = smelu\(beta=1.0\)"):
        split_specs("smelu(beta=1),relu,smelu(beta=1.0)")
    assert parse_sources("none") == ()
    with pytest.raises(ValueError, match="choose from seed, order, noise"):
        parse_sources("seed,gpu")
    p = plan_replica("relu", 2, ("order",), 10, 1e-7)
    assert (p.seed, p.data_seed, p.noise_seed) == (10, 12, None)


def test_identical_replicas_have_pd_exactly_zero(small_base, tmp_path):
    options = runner.StudyOptions(activations=("smelu(beta=0.5)",), replicas=2, sources=())
    result = runner.run_study(small_base(), options, str(tmp_path / "control"))
    v = result["variants"][0]
    assert v["relative_pd"]["mean"] == 0.0 and v["absolute_pd"]["mean"] == 0.0
    assert [t["relative_pd"] for t in v["pd_over_time"]] == [0.0, 0.0]  # steps 30 and 60


def test_study_writes_table_plot_and_dashboards(small_base, tmp_path):
    out = str(tmp_path / "study")
    options = runner.StudyOptions(activations=("relu", "smelu(beta=1)"), replicas=3,
                                  sources=("seed", "order"), title="unit study")
    result = runner.run_study(small_base(), options, out)
    for name in (runner.RESULTS_JSON, runner.RESULTS_MD, runner.FRONTIER_PNG, "config.yaml"):
        assert os.path.exists(os.path.join(out, name)), name
    with open(os.path.join(out, runner.RESULTS_JSON)) as fh:
        saved = json.load(fh)
    assert [v["variant"] for v in saved["variants"]] == ["relu", "smelu(beta=1)"]
    for v in saved["variants"]:
        assert v["pairs"] == 3 and len(v["pd_pairs"]) == 3  # K(K-1)/2 with K = 3
        assert len(v["replica_results"]) == 3
        assert v["relative_pd"]["mean"] > 0  # different seeds and order -> replicas disagree
        pair_values = [p["relative_pd"] for p in v["pd_pairs"]]
        assert v["relative_pd"]["mean"] == pytest.approx(np.mean(pair_values))
        assert 0.5 < v["auc"]["mean"] < 1.0
        seeds = {r["plan"]["seed"] for r in v["replica_results"]}
        assert seeds == {0, 1, 2}
        assert [t["step"] for t in v["pd_over_time"]] == [30, 60]
    with open(os.path.join(out, runner.RESULTS_MD), encoding="utf-8") as fh:
        table = fh.read()
    assert "| `smelu(beta=1)` | 3 |" in table and "relative PD (%)" in table
    assert "PD ratio vs `relu` [95% CI]" in table and "smallest detectable PD ratio" in table
    assert "(frontier.png)" in table and "(pd_distribution.png)" in table
    stats = saved["statistics"]
    assert saved["baseline"] == stats["baseline"] == "relu"
    assert saved["recommended"] in ("relu", "smelu(beta=1)") and stats["draws"] == 1000
    relu, smelu = saved["variants"]
    assert relu["verdict"] == "baseline" and relu["pd_ratio"]["estimate"] == 1.0
    assert smelu["verdict"] in ("fewer disagreements than baseline (significant)", "within noise",
                                "more disagreements (significant)")
    for v in saved["variants"]:
        ci = v["relative_pd_ci"]
        assert ci["estimate"] == pytest.approx(v["relative_pd"]["mean"])
        assert ci["ci_lower"] <= ci["estimate"] <= ci["ci_upper"]
        assert v["auc_ci"]["ci_lower"] <= v["auc_ci"]["estimate"] <= v["auc_ci"]["ci_upper"]
        assert v["pd_over_time"][-1]["relative_pd"] == pytest.approx(ci["estimate"])
        assert 0 < v["relative_pd_tail"]["p90"] <= v["relative_pd_tail"]["p99"]
    ratio = smelu["pd_ratio"]
    assert ratio["estimate"] == pytest.approx(smelu["relative_pd"]["mean"] / relu["relative_pd"]["mean"])
    for name in (runner.FRONTIER_PNG, runner.DISTRIBUTION_PNG):
        with open(os.path.join(out, name), "rb") as fh:
            png = fh.read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    from PIL import Image

    with Image.open(os.path.join(out, runner.FRONTIER_PNG)) as img:
        assert img.size[0] > 400 and img.size[1] > 300
    # TensorBoard: one run per variant on shared tags, one HParams session per replica.
    from tensorboard.backend.event_processing import event_multiplexer

    mux = event_multiplexer.EventMultiplexer(size_guidance={"tensors": 0})
    mux.AddRunsFromDirectory(os.path.join(out, "tensorboard"))
    mux.Reload()
    runs = mux.Runs()
    assert {"pd/relu", "pd/smelu_beta_1"} <= set(runs)
    assert {"pd/relative", "pd/relative_ci_lower", "auc/mean"} <= set(runs["pd/smelu_beta_1"]["tensors"])
    assert sorted(r for r in runs if r.startswith("replicas/")) == [
        f"replicas/{v}/replica-{i}" for v in ("relu", "smelu_beta_1") for i in range(3)]
    assert result["num_eval_examples"] > 100


def test_noise_source_perturbs_only_the_initial_weights(small_base, tmp_path):
    """Same seed and order, 1e-7 relative weight noise: replicas start apart, so PD > 0 but small."""
    options = runner.StudyOptions(activations=("relu",), replicas=2, sources=("noise",), noise_scale=1e-7)
    result = runner.run_study(small_base(), options, str(tmp_path / "noise"))
    v = result["variants"][0]
    plans = [r["plan"] for r in v["replica_results"]]
    assert {p["seed"] for p in plans} == {0} and {p["data_seed"] for p in plans} == {0}
    assert [p["noise_seed"] for p in plans] == [0, 1]
    assert 0 < v["relative_pd"]["mean"] < 0.05


def test_a_study_with_early_stopping_reports_each_replica_at_its_best_step(run_once, tmp_path):
    from recsys import config as cfg
    from tests.train.conftest import EARLY, SETS, make_early_stopping_data

    data = run_once("early-stopping-data", make_early_stopping_data) / "data"
    base = cfg.load("synthetic_small", [f"data.spec_dir={data}", *SETS, *EARLY])
    options = runner.StudyOptions(activations=("relu",), replicas=2, sources=("order",), patience=2,
                                  bootstrap_draws=50)
    result = runner.run_study(base, options, str(tmp_path / "study"))
    (v,) = result["variants"]
    runs = tmp_path / "study" / "runs" / "relu"
    fps = [json.loads((runs / f"replica_{i}" / "fingerprint.json").read_text()) for i in range(2)]
    best = [fp["early_stopping"]["best_step"] for fp in fps]
    assert [r["step"] for r in v["replica_results"]] == best
    stopped = [fp["early_stopping"]["stopped_step"] for fp in fps]
    assert all(s < 60 for s in stopped) and v["stopping"]["hit_max"] == 0  # they converged before 60
    assert (v["stopping"]["stopped_min"], v["stopping"]["stopped_max"]) == (min(stopped), max(stopped))
    for i, fp in enumerate(fps):  # each replica's reported AUC is that of its kept (best) weights
        assert v["replica_results"][i]["metrics"]["auc"] == pytest.approx(fp["eval"]["auc"], abs=1e-12)
    assert result["statistics"]["selection"].startswith("per replica, its own best evaluation")
    assert "stopped at: median [range]" in (tmp_path / "study" / "results.md").read_text()
