"""Cost beside PD and accuracy: training ex/s, serving latency and parameters vs the baseline, and the
recommendation under --max_cost (a budget nothing meets recommends nothing and says so); the replicas'
exports as versions, never clobbered without --overwrite."""

from __future__ import annotations

import json
import os

import pytest

from recsys.settings.study import StudySettings
from recsys.study import cost, runner


def _row(name, rate, params, latency, pd, auc_upper=0.01):
    return {"variant": name, "replica_results": [], "relative_pd_ci": {"estimate": pd},
            "auc_delta": {"estimate": 0.0, "ci_lower": -0.01, "ci_upper": auc_upper},
            "cost": None, "_raw": {"train_examples_per_second": rate, "parameters": params,
                                   "latency_seconds": latency}}


def _costed(rows, baseline="relu"):
    costs = cost.relative({r["variant"]: r["_raw"] for r in rows}, baseline)
    for r in rows:
        r["cost"] = costs[r["variant"]]
    return rows


def test_cost_is_the_largest_time_ratio_vs_the_baseline():
    rows = _costed([_row("relu", 1000.0, 100, {"1": 0.001, "256": 0.004}, 0.2),
                    _row("relu×2", 400.0, 200, {"1": 0.0015, "256": 0.012}, 0.1),
                    _row("smelu", 800.0, 100, {"1": 0.001, "256": 0.005}, 0.05)])
    relu, ens, smelu = (r["cost"] for r in rows)
    assert relu["cost"] == 1.0 and relu["train_time_ratio"] == 1.0
    assert ens["train_time_ratio"] == pytest.approx(2.5) and ens["latency_ratio"]["256"] == pytest.approx(3.0)
    assert ens["cost"] == pytest.approx(3.0) and ens["parameter_ratio"] == 2.0
    assert smelu["cost"] == pytest.approx(1.25)
    assert cost.recommend_within(rows, "relu", 10.0) == "smelu"  # lowest PD overall
    assert cost.recommend_within(rows, "relu", 1.2) == "relu"  # smelu costs 1.25: only the baseline fits
    assert cost.recommend_within(rows, "relu", 0.9) is None  # even the baseline costs 1.0


def test_an_early_stopped_replica_counts_only_the_steps_it_trained():
    # 100 steps maximum, batch 10: a replica stopped at step 40 in 2 s ran 200 ex/s, not 500.
    replicas = [{"train_seconds": 2.0, "early_stopping": {"stopped_step": 40, "max_steps": 100}},
                {"train_seconds": 5.0, "early_stopping": None}]
    assert cost.examples_per_second(replicas, 100, 10) == pytest.approx((200.0 + 200.0) / 2)


def test_without_latency_the_cost_is_the_training_time_ratio():
    rows = _costed([_row("relu", 1000.0, 10, None, 0.2), _row("relu×2", 500.0, 20, None, 0.1)])
    assert rows[1]["cost"]["latency_ratio"] is None and rows[1]["cost"]["cost"] == pytest.approx(2.0)
    # An AUC significantly below the baseline's is not eligible, whatever its cost.
    worse = _costed([_row("relu", 1000.0, 10, None, 0.2), _row("gelu", 1000.0, 10, None, 0.1, -0.001)])
    assert cost.recommend_within(worse, "relu", 5.0) == "relu"


def test_a_negative_budget_is_refused():
    with pytest.raises(ValueError, match="max_cost must be > 0"):
        StudySettings(max_cost=-1.0)


def test_study_records_cost_and_an_unmeetable_budget_recommends_nothing(small_base, tmp_path):
    options = runner.StudyOptions(activations=("relu", "relu×2"), replicas=2, sources=("seed",),
                                  export_dir=str(tmp_path / "exports"), max_cost=0.5)
    result = runner.run_study(small_base(), options, str(tmp_path / "study"))
    assert result["recommended"] is None and result["statistics"]["recommended"] is None
    budget = result["cost_budget"]
    assert budget["max_cost"] == 0.5 and budget["latency_measured"]
    assert "nothing is recommended" in budget["message"]
    with open(tmp_path / "study" / runner.RESULTS_JSON) as fh:
        saved = json.load(fh)
    relu, ens = (v["cost"] for v in saved["variants"])
    assert relu["cost"] == 1.0 and relu["parameter_ratio"] == 1.0
    assert ens["parameters"] == 2 * relu["parameters"] > 0  # two complete towers
    assert ens["train_examples_per_second"] > 0 and ens["train_time_ratio"] > 0
    assert set(ens["latency_seconds"]) == {"1", "256"} and all(x > 0 for x in ens["latency_seconds"].values())
    assert ens["cost"] == max(ens["train_time_ratio"], *ens["latency_ratio"].values())
    # The replicas of relu×2 are ensembles: the exports hold both towers.
    assert saved["variants"][1]["replica_results"][0]["export_path"].startswith(str(tmp_path / "exports"))
    # A generous budget gives back the unconstrained recommendation.
    assert cost.recommend_within(saved["variants"], "relu", 1e9) == budget["unconstrained_recommendation"]
    text = (tmp_path / "study" / runner.RESULTS_MD).read_text(encoding="utf-8")
    assert "#### Cost vs the baseline" in text and "| `relu×2` |" in text
    assert "nothing is recommended" in text and "**Recommended:" not in text
    # Replica i of each variant was exported as version i+1; another study refuses to clobber them
    # before training anything, and --overwrite replaces them.
    exports = tmp_path / "exports"
    assert sorted(os.listdir(exports / "relu")) == ["1", "2"]
    assert (exports / "relu" / "2" / "saved_model.pb").exists()
    again = runner.StudyOptions(activations=("relu",), replicas=2, sources=("seed",), export_dir=str(exports))
    cheap = small_base("train.steps=10", "train.eval_every=10")
    with pytest.raises(FileExistsError, match="exports already exist"):
        runner.run_study(cheap, again, str(tmp_path / "s2"))
    assert not (tmp_path / "s2").exists()
    first = (exports / "relu" / "1" / "saved_model.pb").stat().st_mtime_ns
    runner.run_study(cheap, again, str(tmp_path / "s2"), overwrite=True)
    assert (exports / "relu" / "1" / "saved_model.pb").stat().st_mtime_ns != first
