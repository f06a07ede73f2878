"""Studies at convergence: each replica reported at its own best validation step (early stopping), the
report's stopping steps and **hit max** marks, the short-trained caveat, and the --patience setting."""

from __future__ import annotations

import numpy as np
import pytest

from recsys import config as cfg
from recsys.repro.stats import bootstrap_study
from recsys.settings.study import StudySettings
from recsys.study import report
from recsys.study.analysis import EARLY_STOPPING_RULE, VariantRecords, analyse
from recsys.study.variants import plan_replica, replica_config


def _stop(stopped: int, best: int, hit_max: bool = False) -> dict:
    return {"metric": "auc", "patience": 2, "min_delta": 0.0, "max_steps": 40, "stopped_step": stopped,
            "best_step": best, "best_value": 0.7, "evaluations": stopped // 10, "hit_max": hit_max}


def _variants(rng, n):
    steps = (10, 20, 30, 40)
    records = lambda: {s: rng.uniform(0.05, 0.95, n) for s in steps}  # noqa: E731
    a = VariantRecords("a", (records(), records(), records()), ({},) * 3,
                       stops=(_stop(30, 10), _stop(40, 20), _stop(40, 30)))
    b = VariantRecords("b", (records(), records(), records()), ({},) * 3,
                       stops=(_stop(40, 40, True), _stop(40, 20), _stop(30, 10)))
    return a, b


def test_with_early_stopping_each_replica_is_reported_at_its_own_best_step():
    rng = np.random.default_rng(0)
    n = 300
    y = (rng.uniform(size=n) < 0.5).astype(np.float64)
    a, b = _variants(rng, n)
    assert a.early_stopped and a.replica_steps() == (10, 20, 30) and a.selected_step() == 20
    np.testing.assert_array_equal(a.final(), np.stack([a.records[0][10], a.records[1][20], a.records[2][30]]))
    assert a.stopping() == {"stopped_median": 40.0, "stopped_min": 30, "stopped_max": 40, "best_median": 20.0,
                            "best_min": 10, "best_max": 30, "hit_max": 0, "max_steps": 40, "metric": "auc",
                            "patience": 2}
    assert b.stopping()["hit_max"] == 1
    result = analyse([a, b], y, None, draws=50, seed=0)
    assert result.selection == EARLY_STOPPING_RULE.format(metric="auc")
    expected = bootstrap_study({"a": a.final(), "b": b.final()}, y, None, 50, 0)
    assert result.final.variant("b").relative_pd.estimate == expected.variant("b").relative_pd.estimate
    assert result.final.variant("a").auc.estimate == expected.variant("a").auc.estimate
    assert [p["selected"] for p in result.over_time["a"]] == [True, True, True, False]
    # A replica without early stopping in the variant: the variant's common step, as before.
    mixed = VariantRecords("a", a.records, a.plans, stops=())
    assert not mixed.early_stopped and mixed.replica_steps() == (40, 40, 40) and mixed.stopping() == {}


def _row(variant: str, stopping: dict | None, selected: int, ratio: float = 1.0) -> dict:
    ci = {"estimate": ratio, "ci_lower": ratio, "ci_upper": ratio}
    zero = {"estimate": 0.0, "ci_lower": 0.0, "ci_upper": 0.0}
    return {"variant": variant, "stopping": stopping or {}, "selected_step": selected, "pd_ratio": ci,
            "auc_delta": zero, "relative_pd_ci": ci, "auc_ci": ci, "verdict": "within noise",
            "validation_auc": {"10": 0.6, "40": 0.7}, "pd_over_time": [{"step": 10}, {"step": 40}]}


def test_the_report_gives_stopping_steps_and_marks_a_variant_that_hit_the_maximum():
    rng = np.random.default_rng(0)
    a, b = _variants(rng, 10)
    payload = {"config": {"train": {"steps": 40}},
               "statistics": {"baseline": "a", "recommended": "a", "replicas": 3, "selection": "rule",
                              "selected_steps": {"a": 20, "b": 20}, "method": "m", "num_examples": 10,
                              "detectable_pd_ratio": None},
               "variants": [_row("a", a.stopping(), 20), _row("b", b.stopping(), 20, 0.5)]}
    text = report.statistics_section(payload)
    assert "| variant | best step: median [range] | stopped at: median [range] | relative PD" in text
    assert "| `a` | 20 [10–30] | 40 [30–40] | " in text
    assert "| `b` | 20 [10–40] | 40 [30–40] **hit max (1/3)** | " in text
    assert "had not improved for 2 evaluations, at most 40 steps" in text
    finding = report.finding_line(payload)
    assert "(K=3, best steps 20 [10–40])" in finding
    assert finding.endswith("; short-trained: `b` hit train.steps=40 before the validation AUC stopped "
                            "improving, so their numbers are not at convergence")
    # Fixed length: a variant whose best validation step is the last is still learning.
    fixed = {**payload, "variants": [_row("a", None, 10), _row("b", None, 40, 0.5)]}
    assert "stopped at" not in report.statistics_section(fixed)
    assert report.short_trained(fixed) == ["b"]
    assert "(K=3, step 40)" in report.finding_line(fixed)
    assert report.finding_line(fixed).endswith("still improved on validation at train.steps=40 (fixed "
                                               "length, no early stopping), so these numbers are not at "
                                               "convergence (`recsys study --patience` trains to it)")
    converged = {**payload, "variants": [_row("a", a.stopping(), 20), _row("b", a.stopping(), 20, 0.5)]}
    assert report.short_trained(converged) == [] and "short-trained" not in report.finding_line(converged)


def test_studies_converge_by_default_and_the_update_source_trains_fixed_length_versions():
    assert StudySettings().patience == 3 and StudySettings().options().patience == 3
    with pytest.raises(ValueError, match=r"patience 3 \(early stopping\) needs a validation split"):
        StudySettings(validation_fraction=0.0)
    assert StudySettings(validation_fraction=0.0, patience=0).options().patience == 0
    base = cfg.load("synthetic_small", ["data.validation_fraction=0.1", "train.checkpoint=false"])
    plan = plan_replica("relu", 0, ("seed",), 0, 0.0, 1, (1,))
    early = replica_config(base, "relu", plan, patience=3).train
    assert early.early_stopping_patience == 3 and early.checkpoint  # the best step's checkpoint is kept
    assert replica_config(base, "relu", plan).train.early_stopping_patience == 0  # the config's
    # The update source (recsys/study/update.py) holds out no validation split: no early stopping.
    assert replica_config(base, "relu", plan, validation_fraction=0.0,
                          patience=3).train.early_stopping_patience == 0
