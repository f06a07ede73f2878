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
    from recsys.repro.compare import MODEL_VARIABLE, export_weights_digest

    result, _ = trained
    reader = tf.train.load_checkpoint(os.path.join(result.export_path, "variables", "variables"))
    saved = [k for k in reader.get_variable_to_shape_map() if k != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert all(MODEL_VARIABLE.match(k) for k in saved), saved
    assert len(saved) == len(result.model.get_weights()) == len(result.model.trainable_weights)
    assert export_weights_digest(result.export_path) == result.fingerprint["weights_sha256"]


def test_predict_helper_matches_model(trained, tiny_data):
    result, _ = trained
    _, spec = tiny_data
    ds = make_dataset(spec, "eval", 500, training=False)
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
