"""End-to-end training on synthetic data: known AUC, correct metrics, resolved config, export."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml

from recsys import config as cfg
from recsys.compat import tf
from recsys.data import make_dataset
from recsys.train import train
from recsys.train.predict import predict

OVERRIDES = [
    "data.batch_size=256",
    "data.eval_batch_size=1024",
    "train.steps=240",
    "train.eval_every=120",
    "train.learning_rate=0.003",
    "train.steps_per_execution=20",
    "train.verbose=0",
    "model.activation=smelu(beta=0.5)",
    "export.version=7",
]


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    root, _ = tiny_data
    model_dir = tmp_path_factory.mktemp("model")
    exp = cfg.load("synthetic_small", [f"data.spec_dir={root}"] + OVERRIDES)
    return train(exp, str(model_dir), predict_eval=True), model_dir


def test_reaches_known_auc(trained, metrics_fns):
    result, _ = trained
    auc, logloss = metrics_fns
    ev = result.eval
    assert ev["auc"] > 0.7, ev
    assert 0.8 < ev["calibration"] < 1.25, ev
    # the reported eval metrics are exact, over every eval example
    labels, preds = result.eval_labels, result.eval_predictions
    assert preds.shape == labels.shape == (3000,) and ev["examples"] == 3000
    assert ev["auc"] == pytest.approx(auc(labels, preds), abs=1e-9)
    assert ev["logloss"] == pytest.approx(logloss(labels, preds), abs=1e-6)
    assert ev["calibration"] == pytest.approx(preds.sum() / labels.sum(), rel=1e-4)
    assert len(result.history["val_auc"]) == 2  # evaluated every 120 of 240 steps


def test_writes_config_checkpoints_logs_and_export(trained, tiny_data):
    result, model_dir = trained
    saved = yaml.safe_load((model_dir / "config.yaml").read_text())
    assert saved["model"]["activation"] == "smelu(beta=0.5)"
    assert saved["data"]["spec_dir"] == str(tiny_data[0])
    assert cfg.load(str(model_dir / "config.yaml")) == result.config
    assert os.listdir(model_dir / "checkpoints")
    assert os.listdir(model_dir / "logs" / "train") and os.listdir(model_dir / "logs" / "validation")
    assert result.export_path == str(model_dir / "export" / "ranker" / "7")
    assert sorted(os.listdir(model_dir / "export" / "ranker")) == ["7"]  # no temp dir left


def test_export_holds_the_trained_weights_and_nothing_else(trained):
    """The export is the evaluated model itself: its variables are exactly the model's weights (no
    optimizer or metric state), and their digest is the fingerprint's."""
    from recsys.export.saved_model import WEIGHT_KEY, read_weights
    from recsys.repro.compare import export_weights_digest

    result, _ = trained
    reader = tf.train.load_checkpoint(os.path.join(result.export_path, "variables", "variables"))
    saved = [k for k in reader.get_variable_to_shape_map() if k != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert all(WEIGHT_KEY.match(k) for k in saved), saved
    assert len(saved) == len(result.model.get_weights()) == len(result.model.trainable_weights)
    # in model.variables order, value for value (a warm start from an export sets them in this order)
    for got, want in zip(read_weights(result.export_path), result.model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert export_weights_digest(result.export_path) == result.fingerprint["weights_sha256"]


def test_predict_helper_matches_model(trained, tiny_data):
    result, _ = trained
    _, spec = tiny_data
    ds = make_dataset(spec, "eval", 500)
    preds = predict(result.model, ds)
    np.testing.assert_allclose(preds, result.eval_predictions, rtol=1e-5, atol=1e-6)


def _scalars(log_dir) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for path in tf.io.gfile.glob(str(log_dir / "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for v in event.summary.value:
                out.setdefault(v.tag, []).append(float(tf.make_ndarray(v.tensor)))
    return out


def test_tensorboard_scalars(trained):
    result, model_dir = trained
    history = result.history
    for split, prefix in (("train", ""), ("validation", "val_")):
        scalars = _scalars(model_dir / "logs" / split)
        for key in ("loss", "auc", "logloss", "calibration"):  # the values of each of the 2 evaluations
            assert scalars[f"epoch_{key}"] == pytest.approx(history[f"{prefix}{key}"], rel=1e-6), key
        assert len(scalars["epoch_auc"]) == 2
    assert _scalars(model_dir / "logs" / "validation")["epoch_auc"][-1] == pytest.approx(
        result.eval["auc"], abs=1e-6
    )


def test_compare_cli_on_the_export_against_itself(trained, tiny_data):
    """``recsys compare`` wires PD, flip rate, top-k churn and accuracy from their one implementation;
    --max_churn is its deprecated alias of --max_flip_rate."""
    import json
    import subprocess
    import sys

    from recsys.repro import accuracy

    result, _ = trained
    root, _ = tiny_data
    export = result.export_path
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(
        [sys.executable, "-m", "recsys.cli", "compare", export, export, f"--data={root}", "--max_churn=0.1",
         "--max_relative_pd=0", "--require_identical_weights", "--json=-"],
        cwd=repo, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": repo})
    assert proc.returncode == 0, proc.stderr
    assert "--max_churn is deprecated" in proc.stderr
    diff = json.loads(proc.stdout)
    assert diff["passed"] and diff["identical_weights"] and diff["identical_predictions"]
    assert diff["examples"] == 3000
    assert diff["relative_pd"] == diff["absolute_pd"] == diff["flip_rate"] == diff["topk_churn"] == 0.0
    assert diff["relative_pd_percentiles"] == {"p50": 0.0, "p90": 0.0, "p99": 0.0, "p100": 0.0}
    assert diff["thresholds"]["max_flip_rate"] == 0.1 and diff["thresholds"]["max_topk_churn"] is None
    labels, preds = result.eval_labels, result.eval_predictions
    assert diff["a"]["auc"] == pytest.approx(accuracy.auc(labels, preds), abs=1e-4)
    from recsys.repro.compare import format_report

    report = format_report(diff)
    assert "flip rate@0.5 0;" in report and "top-10 churn 0;" in report and report.endswith("gate: passed")
