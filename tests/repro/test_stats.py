"""The study's bootstrap statistics: golden numbers on a fixed input, and the properties behind them."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.repro import stats
from recsys.repro.accuracy import auc
from serving.pd import pairwise_pd


def _fixed_input() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """5 variants x 4 replicas x 400 examples: replica noise sets PD; 'flat' is reproducible but worse."""
    rng = np.random.default_rng(2024)
    n = 400
    labels = (rng.random(n) < 0.3).astype(np.float64)
    logit = rng.normal(size=n) + 1.5 * labels

    def replicas(noise: float) -> np.ndarray:
        return np.stack([1 / (1 + np.exp(-(logit + noise * rng.normal(size=n)))) for _ in range(4)])

    shared = logit + 1.5 * rng.normal(size=n)  # less informative, nearly identical replicas
    flat = np.stack([1 / (1 + np.exp(-(shared + 0.1 * rng.normal(size=n)))) for _ in range(4)])
    out = {"relu": replicas(0.4), "smelu": replicas(0.2), "gelu": replicas(0.38), "wide": replicas(0.8)}
    return {**out, "flat": flat}, labels


GOLDEN = {  # (estimate, ci_lower, ci_upper) at draws=200, seed=0
    "relu": {"relative_pd": (0.17910374436063023, 0.16195740664409025, 0.19863690588337854),
             "auc": (0.8307760989010989, 0.7856559350888289, 0.8695794357183353)},
    "smelu": {"relative_pd": (0.08998613477331996, 0.0796511055180595, 0.10215459649672894),
              "auc": (0.8466208791208791, 0.8071775100333825, 0.8846873525383198),
              "pd_ratio": (0.5024246427373983, 0.44862409293735067, 0.5749633784554747),
              "auc_delta": (0.015844780219780197, 0.0015711443873327644, 0.030736473889171334)},
    "gelu": {"pd_ratio": (0.9418413506665471, 0.8320209312817046, 1.0623291876242074),
             "auc_delta": (0.0032623626373625703, -0.015224282383825043, 0.02423093620217909)},
    "wide": {"pd_ratio": (1.8357429931664286, 1.6635841233264341, 2.0588546115864528),
             "auc_delta": (-0.022074175824175923, -0.04508668074589115, 0.011154749136025061)},
    "flat": {"relative_pd": (0.04733419876799514, 0.041757712932702695, 0.0525098401054268),
             "auc_delta": (-0.11846153846153851, -0.17087165778785607, -0.06575241022924579)},
}


@pytest.fixture(scope="module")
def study() -> stats.StudyStats:
    preds, labels = _fixed_input()
    return stats.bootstrap_study(preds, labels, draws=200, seed=0)


def test_golden_intervals(study):
    for variant, metrics in GOLDEN.items():
        s = study.variant(variant)
        for name, (estimate, lower, upper) in metrics.items():
            got = getattr(s, name)
            assert (got.estimate, got.lower, got.upper) == pytest.approx((estimate, lower, upper),
                                                                          rel=1e-9), (variant, name)
    assert study.variant("relu").log_pd_sd == pytest.approx(0.050463186185917254, rel=1e-9)
    assert study.detectable_pd_ratio == pytest.approx(0.869467568028737, rel=1e-9)


def test_verdicts_and_recommendation(study):
    assert [(s.variant, s.verdict) for s in study.variants] == [
        ("relu", stats.BASELINE), ("smelu", stats.FEWER), ("gelu", stats.WITHIN), ("wide", stats.MORE),
        ("flat", stats.FEWER)]
    # 'flat' has the lowest PD but a significantly worse AUC (delta CI entirely below 0): not recommended.
    assert study.variant("flat").auc_delta.upper < 0
    assert study.recommended == "smelu"
    base = study.variant("relu")
    assert (base.pd_ratio.lower, base.pd_ratio.upper, base.auc_delta.lower, base.auc_delta.upper) == (
        1.0, 1.0, 0.0, 0.0)


def test_point_estimates_are_the_plain_study_numbers(study):
    preds, labels = _fixed_input()
    for variant, p in preds.items():
        s = study.variant(variant)
        assert s.relative_pd.estimate == pytest.approx(pairwise_pd(p).relative.mean, rel=1e-12)
        assert s.absolute_pd.estimate == pytest.approx(pairwise_pd(p).absolute.mean, rel=1e-12)
        assert s.auc.estimate == pytest.approx(np.mean([auc(labels, r) for r in p]), rel=1e-12)
        assert s.relative_pd.lower < s.relative_pd.estimate < s.relative_pd.upper


def test_seeded_and_baseline_choice():
    preds, labels = _fixed_input()
    a = stats.bootstrap_study(preds, labels, draws=60, seed=7)
    b = stats.bootstrap_study(preds, labels, draws=60, seed=7)
    c = stats.bootstrap_study(preds, labels, draws=60, seed=8)
    assert a.as_dict() == b.as_dict()
    assert a.variant("smelu").pd_ratio.lower != c.variant("smelu").pd_ratio.lower
    d = stats.bootstrap_study(preds, labels, baseline="smelu", draws=60, seed=7)
    assert d.baseline == "smelu" and d.variant("relu").verdict == stats.MORE
    with pytest.raises(ValueError, match="baseline 'tanh'"):
        stats.bootstrap_study(preds, labels, baseline="tanh", draws=60)


def test_weighted_auc_matches_auc_of_the_resampled_examples():
    rng = np.random.default_rng(3)
    n = 300
    labels = (rng.random(n) < 0.3).astype(np.float64)
    preds = np.round(rng.random(n), 1)  # many ties
    weights = stats._example_multiplicities(rng, 5, n)
    got = stats._SortedReplica.of(preds, labels).auc(weights)
    want = [auc(np.repeat(labels, w.astype(int)), np.repeat(preds, w.astype(int))) for w in weights]
    assert got == pytest.approx(want, abs=1e-12)


def test_no_replica_is_paired_with_a_copy_of_itself():
    """Two replicas whose relative difference is 0.5 on every example: every draw's PD is exactly 0.5.

    Counting a resampled duplicate as a pair (PD 0) would drag half the draws to 0.
    """
    n = 50
    labels = np.arange(n) % 2
    p = np.linspace(0.1, 0.5, n)
    preds = {"a": np.stack([p, p * 5 / 3])}  # |p - 5p/3| / (4p/3) = 0.5
    s = stats.bootstrap_study(preds, labels, draws=100).variant("a")
    assert (s.relative_pd.estimate, s.relative_pd.lower, s.relative_pd.upper) == pytest.approx((0.5,) * 3)
    counts = stats._replica_multiplicities(np.random.default_rng(0), 500, 3)
    assert ((counts > 0).sum(axis=1) >= 2).all() and (counts.sum(axis=1) == 3).all()


def test_zero_pd_baseline_gives_no_ratio():
    rng = np.random.default_rng(0)
    labels = (rng.random(100) < 0.5).astype(float)
    p = rng.random(100)
    out = stats.bootstrap_study({"none": np.stack([p, p]), "seed": np.stack([p, p * 0.9])}, labels, draws=50)
    assert out.variant("none").relative_pd.upper == 0.0
    assert out.variant("seed").pd_ratio is None and out.variant("seed").verdict == stats.UNDEFINED
    assert out.detectable_pd_ratio is None
    assert out.recommended == "none"


def test_detectable_ratio_formula():
    assert stats.detectable_ratio(0.1) == pytest.approx(np.exp(-1.959963984540054 * np.sqrt(2) * 0.1))
    assert stats.detectable_ratio(0.0) == 1.0
