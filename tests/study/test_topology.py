"""The topology source: one job on 1 and on 2 local workers; only the order of the gradient sums differs.
(It is also the study's test on the local cluster: replicas that are real 2-worker jobs.)"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from recsys.repro import accuracy
from recsys.study import runner
from recsys.study.variants import check_topology, parse_sources, parse_workers, plan_replica


def test_topology_plans_cycle_the_worker_counts_and_refuse_indivisible_batches():
    assert parse_sources("topology") == ("topology",)
    plans = [plan_replica("relu", i, ("topology",), 5, 1e-7, topology_workers=(1, 2, 4)) for i in range(4)]
    assert [p.workers for p in plans] == [1, 2, 4, 1]
    assert {(p.seed, p.data_seed, p.noise_seed) for p in plans} == {(5, 5, None)}  # nothing else differs
    assert plan_replica("relu", 3, ("seed",), 0, 1e-7, workers=2).workers == 2  # --workers without topology
    assert parse_workers("1, 2,8") == (1, 2, 8)
    with pytest.raises(ValueError, match=">= 1"):
        parse_workers("0,2")
    with pytest.raises(ValueError, match=r"divisible by every worker count, and it is not by \[3\]"):
        check_topology((1, 2, 3), 3, 256)
    assert check_topology((1, 2, 3), 2, 256) == []  # replica 3 (on 3 workers) is not planned
    warning = check_topology((1, 2), 3, 256)
    assert len(warning) == 1 and "1 of 3 pairs are bit-identical" in warning[0]


def test_one_vs_two_workers_differ_and_two_vs_two_are_bit_identical(small_base, tmp_path):
    base = small_base()
    options = runner.StudyOptions(activations=("relu",), replicas=3, sources=("topology",),
                                  topology_workers=(1, 2, 2), validation_fraction=0.2, bootstrap_draws=100)
    out = str(tmp_path / "topology")
    result = runner.run_study(base, options, out)
    v = result["variants"][0]
    plans = [r["plan"] for r in v["replica_results"]]
    assert [p["workers"] for p in plans] == [1, 2, 2]
    assert [p["collective"] for p in plans] == ["none (1 worker)", "RING (AUTO on CPU)", "RING (AUTO on CPU)"]
    assert {(p["seed"], p["data_seed"]) for p in plans} == {(0, 0)}
    pairs = {tuple(p["pair"]): p["relative_pd"] for p in v["pd_pairs"]}
    # 1 worker sums the 256 rows' gradients in one reduction, 2 workers sum 128 each and then all-reduce:
    # different float rounding, so the predictions differ (a little, after 60 steps).
    assert pairs[(0, 1)] > 0 and pairs[(0, 2)] > 0
    # The two 2-worker jobs are the same computation: bit-identical predictions.
    assert pairs[(1, 2)] == 0.0 and pairs[(0, 1)] == pairs[(0, 2)]
    # Replicas 1 and 2 are real 2-worker MultiWorkerMirroredStrategy jobs; their metrics are those of the
    # chief's predictions, which came back to the study (replica 0 trained in process).
    for i, replica in enumerate(v["replica_results"]):
        replica_dir = os.path.join(out, "runs", "relu", f"replica_{i}")
        assert os.path.isdir(os.path.join(replica_dir, "workers")) == (i > 0)
        with np.load(os.path.join(replica_dir, "eval_predictions.npz")) as saved:
            preds = saved["predictions"][saved["steps"].tolist().index(replica["step"])]
            assert replica["metrics"]["auc"] == pytest.approx(accuracy.auc(saved["labels"], preds), abs=1e-12)
    assert v["auc"]["mean"] > 0.5  # the replicas learned something
    with open(os.path.join(out, runner.RESULTS_MD), encoding="utf-8") as fh:
        table = fh.read()
    assert "Topology: replica → local workers (all-reduce) = 0: 1 (none (1 worker)), 1: 2 (RING" in table
    with open(os.path.join(out, runner.RESULTS_JSON), encoding="utf-8") as fh:
        saved = json.load(fh)
    assert saved["options"]["sources"] == ["topology"] and saved["options"]["topology_workers"] == [1, 2, 2]
