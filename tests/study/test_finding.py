"""The study's one-line finding and its model-selection sentence, from a results.json payload."""

from __future__ import annotations

from recsys.study.report import finding_line, selection_sentence


def _ci(estimate: float, lower: float, upper: float) -> dict[str, float]:
    return {"estimate": estimate, "ci_lower": lower, "ci_upper": upper}


PAYLOAD = {
    "statistics": {"baseline": "relu", "recommended": "smelu(beta=1)", "replicas": 4,
                   "selection": "per variant, the best validation step", "validation_fraction": 0.1,
                   "num_validation_examples": 8981, "selected_steps": {"relu": 300, "smelu(beta=1)": 400}},
    "variants": [
        {"variant": "relu", "pd_ratio": _ci(1, 1, 1), "auc_delta": _ci(0, 0, 0), "verdict": "baseline",
         "selected_step": 300},
        {"variant": "gelu", "pd_ratio": _ci(0.5, 0.3, 0.9), "auc_delta": _ci(-0.01, -0.02, -0.005),
         "verdict": "fewer disagreements than baseline (significant)", "selected_step": 300},
        {"variant": "smelu(beta=1)", "pd_ratio": _ci(0.0031, 0.0004, 0.0052),
         "auc_delta": _ci(0.0038, 0.0013, 0.0064),
         "verdict": "fewer disagreements than baseline (significant)", "selected_step": 400},
    ],
}


def test_the_finding_names_the_recommended_variant_with_both_intervals():
    assert finding_line(PAYLOAD) == (
        "smelu(beta=1) had 3.1e-03× relu's relative PD [95% CI 4.0e-04–5.2e-03] at AUC +0.0038 "
        "[+0.0013, +0.0064] (K=4, step 400): fewer disagreements (significant)")
    # Baseline recommended: the lowest-ratio other variant; K = 2 says the CI covers examples only.
    other = {**PAYLOAD, "statistics": {**PAYLOAD["statistics"], "recommended": "relu", "replicas": 2}}
    assert finding_line(other).startswith("smelu(beta=1) had 3.1e-03× relu's relative PD [95% CI "
                                          "4.0e-04–5.2e-03 over eval examples only]")
    assert finding_line(other).endswith("fewer disagreements (significant); weak at K=2: the interval covers "
                                        "example noise only, not how much another pair of replicas would "
                                        "differ (--replicas 4 or more to call it)")
    assert "weak at K=2" not in finding_line(PAYLOAD)
    alone = {"statistics": {"baseline": "relu"}, "variants": PAYLOAD["variants"][:1]}
    assert finding_line(alone) == "Only `relu` was measured: nothing to compare."


def test_the_selection_sentence_states_rule_holdout_and_steps():
    assert selection_sentence(PAYLOAD["statistics"]) == (
        "Model selection: per variant, the best validation step (validation: 0.1 of train held out by "
        "record hash, 8,981 examples). Selected steps: `relu` 300, `smelu(beta=1)` 400. (K = 4 replicas.)")


def test_the_line_after_each_replica_says_how_many_are_done_and_the_time_left():
    from recsys.study.runner import replica_done_line

    assert replica_done_line(3, 8, 125.0) == "3/8 replicas trained, 2m05s elapsed, ~3m28s left"
    assert replica_done_line(8, 8, 330.0) == "8/8 replicas trained, 5m30s elapsed"


def test_the_finding_first_names_the_source_the_replicas_differ_by():
    def run(sources, workers=(1, 2), noise=1e-7):
        plans = [{"plan": {"workers": w}} for w in workers]
        variants = [{**v, "replica_results": plans} for v in PAYLOAD["variants"]]
        return finding_line({**PAYLOAD, "variants": variants,
                             "options": {"sources": sources, "topology_workers": [1, 2, 4, 8],
                                         "noise_scale": noise}})

    # The demo: the same job on 1 and on 2 workers (the workers the replicas ran on, not the option's list).
    assert run(["topology"]) == ("With replicas differing by topology (1 vs 2 workers): "
                                 + finding_line(PAYLOAD))
    assert run(["topology"], workers=(1, 2, 4, 1)).startswith("With replicas differing by topology "
                                                              "(1 vs 2 vs 4 workers): smelu(beta=1) had ")
    assert run(["seed", "order"]).startswith("With replicas differing by init seed and data order: smelu")
    assert run(["seed", "order", "noise"], noise=1e-6).startswith(
        "With replicas differing by init seed, data order and noise (a 1e-06 weight perturbation): smelu")
    assert run([]).startswith("With replicas differing by nothing (identical replicas): smelu")
