"""Exact resume of a model update on two real MultiWorkerMirroredStrategy workers: a child warm-started
from a parent's export and distilled from its run, killed (submitter and workers) and submitted again,
ends bit-identical to the uninterrupted child (same weights digest, relative PD exactly 0).

The child's embedding tables train with lazy Adam on sparse gradients (all-gathered rows, never
densified) and its dense layers with Adam: that optimizer's slots are part of the resumed state too."""

from __future__ import annotations

import json

import numpy as np

from serving.pd import absolute_pd, relative_pd
from tests.train.conftest import SETS, make_parent

STEPS = 24


def submit_args(data: str, parent: str, export: str, model_dir) -> list[str]:
    sets = [f"data.spec_dir={data}", *SETS, f"train.steps={STEPS}", "train.verbose=1",
            f"train.warm_start_from={export}", f"train.distill_from={parent}",
            "train.distill_weight=0.5", "train.embedding_optimizer=lazy_adam",
            "train.dense_grad_max_elements=0"]
    return ["--config", "synthetic_small", *[f"--set={s}" for s in sets], "--workers", "2",
            "--model_dir", str(model_dir), "--grace_period", "2", "--status_every", "1000",
            "--heartbeat_every", "1", "--stream_heartbeats", "--backoff_delay", "0", "--backoff_limit", "3"]


def outcome(model_dir) -> tuple[dict, np.ndarray]:
    fp = json.loads((model_dir / "fingerprint.json").read_text())
    with np.load(model_dir / "evals" / f"step-{STEPS:09d}.npz") as z:
        return fp, z["predictions"]


def test_a_killed_warm_started_distilled_child_resumes_exactly_on_two_workers(run_once, submit_factory,
                                                                              tmp_path):
    root = run_once("warm-start-parent", make_parent)
    data, parent = str(root / "data"), str(root / "parent")
    export = json.loads((root / "parent" / "fingerprint.json").read_text())["export_path"]
    reference = submit_factory(submit_args(data, parent, export, tmp_path / "ref"))
    assert reference.finish(300) == 0, reference.tail()
    killed_args = submit_args(data, parent, export, tmp_path / "m")
    job = submit_factory(killed_args)
    # After the backup at step 8 (every 4 steps), before the end: the heartbeat lines of worker 1.
    job.wait_for(r"^\[worker-1\] recsys-heartbeat step=(9|1\d) phase=train", 240)
    job.kill()
    again = submit_factory(killed_args)
    again.wait_for(r"holds an unfinished run of this config: it resumes", 60)
    assert again.finish(300) == 0, again.tail()
    (ref_fp, ref_preds), (fp, preds) = outcome(tmp_path / "ref"), outcome(tmp_path / "m")
    assert fp["num_workers"] == 2 and len(fp["resumes"]) == 1 and fp["resumes"][0]["step"] >= 8
    assert fp["weights_sha256"] == ref_fp["weights_sha256"]
    assert relative_pd(ref_preds, preds) == 0.0 and absolute_pd(ref_preds, preds) == 0.0
    parent_digest = json.loads((root / "parent" / "fingerprint.json").read_text())["weights_sha256"]
    assert fp["parent"]["weights_sha256"] == fp["teacher"]["weights_sha256"] == parent_digest
    assert fp["teacher"]["weight"] == 0.5 and fp["parent"]["kind"] == "export"
    train = fp["config"]["train"]
    assert (train["embedding_optimizer"], train["dense_grad_max_elements"]) == ("lazy_adam", 0)
