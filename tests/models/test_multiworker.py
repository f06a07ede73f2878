"""Two real MultiWorkerMirroredStrategy workers on 127.0.0.1: train a few steps, chief-only export,
eval metrics global and identical on both workers."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from recsys.compat import tf
from recsys.data import make_dataset
from recsys.launch.cluster import run_local_cluster

pytestmark = pytest.mark.slow


def _json_tail(stdout: str) -> dict:
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("{"))
    return json.loads("\n".join(lines[start:]))


@pytest.fixture(scope="module")
def cluster_run(tiny_data, tmp_path_factory, repo_root):
    root, _ = tiny_data
    model_dir = tmp_path_factory.mktemp("mw_model")
    argv = [
        sys.executable,
        "-m",
        "recsys.cli",
        "train",
        "--config",
        "synthetic_small",
        "--set",
        f"data.spec_dir={root}",
        "--set",
        "train.steps=40",
        "--set",
        "train.eval_every=20",
        "--set",
        "data.batch_size=256",
        "--set",
        "data.eval_batch_size=1000",
        "--set",
        "train.verbose=0",
        "--set",
        "determinism.collective=RING",
        "--model_dir",
        str(model_dir),
    ]
    results = run_local_cluster(argv, num_workers=2, timeout=240, cwd=str(repo_root))
    return results, model_dir


def test_both_workers_finish_and_agree(cluster_run):
    results, _ = cluster_run
    for r in results:
        assert r.returncode == 0, r.stderr[-4000:]
    chief, worker = (_json_tail(r.stdout) for r in results)
    assert chief["is_chief"] and not worker["is_chief"]
    assert chief["eval"] == worker["eval"]  # metrics are global, not per worker
    assert 0.5 < chief["eval"]["auc"] <= 1.0
    assert "MultiWorkerMirroredStrategy" in results[0].stderr


def test_only_the_chief_exports_and_logs(cluster_run):
    results, model_dir = cluster_run
    chief, worker = (_json_tail(r.stdout) for r in results)
    assert worker["export_path"] is None
    versions = os.listdir(model_dir / "export" / "ranker")
    assert [os.path.join(model_dir, "export", "ranker", v) for v in versions] == [chief["export_path"]]
    for sub in ("logs", "checkpoints", "backup"):
        for _, dirs, _ in os.walk(model_dir / sub):
            assert not [d for d in dirs if "workertemp" in d]
    events = [f for _, _, files in os.walk(model_dir / "logs") for f in files]
    assert events and all(f.startswith("events.out.tfevents") for f in events)
    assert len(events) == 2  # train + validation, chief only


def test_reported_eval_metrics_match_the_exported_model(cluster_run, tiny_data, metrics_fns):
    results, _ = cluster_run
    chief = _json_tail(results[0].stdout)
    auc, logloss = metrics_fns
    _, spec = tiny_data
    loaded = tf.saved_model.load(chief["export_path"])
    preds, labels = [], []
    for serialized in (
        tf.data.Dataset.from_tensor_slices(sorted(tf.io.gfile.glob(spec.path(spec.data.eval_pattern))))
        .interleave(
            lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"),
            cycle_length=2,
            num_parallel_calls=1,
            deterministic=True,
        )
        .batch(1000)
    ):
        preds.append(loaded.signatures["predict_examples"](inputs=serialized)["scores"].numpy())
    for _, y in make_dataset(spec, "eval", 1000):
        labels.append(y.numpy())
    preds, labels = np.concatenate(preds), np.concatenate(labels)
    assert len(preds) == 3000
    ev = chief["eval"]
    assert ev["auc"] == pytest.approx(auc(labels, preds), abs=2e-3)
    assert ev["logloss"] == pytest.approx(logloss(labels, preds), abs=2e-4)
    assert ev["calibration"] == pytest.approx(preds.sum() / labels.sum(), rel=1e-3)
