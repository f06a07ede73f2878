"""Update-churn statistics and the update study's report, on prediction arrays built to known answers."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from recsys.config.schema import Experiment
from recsys.repro import churn_stats
from recsys.study import update, update_report
from recsys.study.runner import StudyOptions
from serving.churn import flip_rates
from serving.pd import absolute_pd, relative_pd


def _preds(rng: np.random.Generator, k: int, n: int) -> np.ndarray:
    return rng.uniform(0.05, 0.95, size=(k, n))


def test_churn_point_estimates_are_the_mean_over_chains_of_pd_and_flip_rate():
    rng = np.random.default_rng(0)
    before, after = _preds(rng, 3, 500), _preds(rng, 3, 500)
    (s,) = churn_stats.bootstrap_churn({"relu": (before, after)}, draws=20)
    pairs = list(zip(before, after, strict=True))
    assert s.relative_pd.estimate == pytest.approx(np.mean([relative_pd(b, a) for b, a in pairs]))
    assert s.absolute_pd.estimate == pytest.approx(np.mean([absolute_pd(b, a) for b, a in pairs]))
    assert s.flip_rate.estimate == pytest.approx(np.mean([flip_rates(b, a).flip_rate for b, a in pairs]))
    assert s.relative_pd.lower < s.relative_pd.estimate < s.relative_pd.upper
    assert s.verdict == "baseline" and s.chains == 3


def test_no_change_is_zero_churn_and_half_the_change_is_a_significant_reduction():
    rng = np.random.default_rng(1)
    before = _preds(rng, 4, 2000)
    noise = rng.normal(0, 0.05, size=before.shape)
    stats = churn_stats.bootstrap_churn({
        "relu": (before, np.clip(before + noise, 0.01, 0.99)),
        "smooth": (before, np.clip(before + noise / 2, 0.01, 0.99)),
        "frozen": (before, before.copy()),
    }, draws=200)
    relu, smooth, frozen = stats
    assert frozen.relative_pd.estimate == 0 and frozen.relative_pd.upper == 0 and frozen.flip_rate.upper == 0
    assert smooth.ratio is not None and smooth.ratio.estimate == pytest.approx(0.5, abs=0.05)
    assert smooth.ratio.upper < 1 and smooth.verdict.startswith("fewer")
    assert frozen.verdict.startswith("fewer")


def test_bad_shapes_and_baselines_are_refused():
    a = np.zeros((2, 5))
    with pytest.raises(ValueError, match="same shape|one shape"):
        churn_stats.bootstrap_churn({"relu": (a, np.zeros((2, 4)))})
    with pytest.raises(ValueError, match="baseline"):
        churn_stats.bootstrap_churn({"relu": (a, a)}, baseline="gelu")


def test_variants_name_distillation():
    names = [v.name for v in update.update_variants(("relu", "smelu(beta=1.0)"), 0.5)]
    assert names == ["relu", "smelu(beta=1.0)", "relu+distill(0.5)", "smelu(beta=1.0)+distill(0.5)"]
    assert [v.name for v in update.update_variants(("relu",), 0.0)] == ["relu"]


def _fake_study(tmp_path: pathlib.Path):
    """Two variants, 3 chains, 3 versions: `smooth` changes half as much per update as `relu`."""
    rng = np.random.default_rng(2)
    n, k, count = 800, 3, 3
    labels = (rng.uniform(size=n) < 0.3).astype(np.float64)
    variants = update.update_variants(("relu", "smooth"), 0.0)
    preds, retrain = {}, {}
    for v, scale in (("relu", 0.08), ("smooth", 0.04)):
        chains = []
        for _ in range(k):
            p = np.clip(0.3 + 0.3 * (labels - 0.3) + rng.normal(0, 0.1, n), 0.01, 0.99)
            versions = [p]
            for _ in range(count - 1):
                versions.append(np.clip(versions[-1] + rng.normal(0, scale, n), 0.01, 0.99))
            chains.append(versions)
        preds[v] = chains
        retrain[v] = [np.clip(c[-1] + rng.normal(0, 0.02, n), 0.01, 0.99) for c in chains]
    options = StudyOptions(activations=("relu", "smooth"), replicas=k, sources=("update",), title="fake",
                           bootstrap_draws=100)
    payload = update.analyse(variants, preds, retrain, labels, "relu", options, count, 50, Experiment())
    payload["tensorboard"] = {"commands": []}
    update.write_outputs(payload, str(tmp_path))
    return payload


def test_update_study_report_tables_verdicts_and_dashboards(tmp_path):
    payload = _fake_study(tmp_path)
    assert [u["update"] for u in payload["updates"]] == ["v1->v2", "v2->v3"]
    smooth = next(c for c in payload["updates"][-1]["variants"] if c["variant"] == "smooth")
    assert smooth["ratio"]["ci_upper"] < 1 and smooth["verdict"].startswith("fewer")
    assert [v["version"] for v in payload["versions"]] == ["v1", "v2", "v3"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["kind"] == "update" and saved["retrain"]["versus"] == "v3"
    md = (tmp_path / "results.md").read_text()
    assert "#### Update v1->v2 (window 1)" in md and "#### Update v2->v3 (window 2)" in md
    assert "replica PD of v3" in md and "v3 vs retrain" in md
    line = update_report.finding_line(payload)
    assert line.startswith("update v2->v3: `relu` churn") and "`smooth`:" in line and "fewer" in line
    assert (tmp_path / "frontier.png").stat().st_size > 10_000
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = sorted(p.name for p in (tmp_path / "tensorboard" / update.UPDATE_DIR).iterdir())
    assert runs == ["relu", "smooth"]
    acc = EventAccumulator(str(tmp_path / "tensorboard" / update.UPDATE_DIR / "smooth")).Reload()
    tags = acc.Tags()["tensors"] or acc.Tags()["scalars"]
    assert {"churn/relative_pd", "churn/flip_rate", "version/replica_relative_pd", "version/auc"} <= set(tags)
    churn_steps = [e.step for e in acc.Tensors("churn/relative_pd")]
    assert churn_steps == [1, 2]
