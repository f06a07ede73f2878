"""The ranking model and the task's loss on it: registry activations everywhere, loss reduction, one
train step, shapes, config errors."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.activations.smelu import SmeLU
from recsys.compat import keras, tf
from recsys.config import ModelConfig
from recsys.config.schema import Experiment, TrainConfig
from recsys.data import make_dataset
from recsys.models import RankingModel
from recsys.models.metrics import ranking_metrics
from recsys.repro.accuracy import auc
from recsys.train.objective import RankingObjective, labels_2d
from recsys.train.task import RankingTask


def _batch(spec, n=64):
    return next(iter(make_dataset(spec, "eval", n)))


def _activation_layers(model):
    return [
        layer
        for layer in model._flatten_layers()
        if layer.__class__.__module__.startswith("recsys.activations")
    ]


def test_one_value_switches_every_activation(tiny_data):
    _, spec = tiny_data
    model = RankingModel(spec, ModelConfig(activation="smelu(beta=0.5)", bottom_mlp=(8, 4), top_mlp=(8, 4)))
    features, _ = _batch(spec)
    probs = model(features).numpy()
    assert probs.shape == (64, 1) and np.all((probs > 0) & (probs < 1))
    acts = _activation_layers(model)
    assert len(acts) == 4 and all(isinstance(a, SmeLU) for a in acts)
    assert len({id(a) for a in acts}) == 4  # one fresh layer per use site


def test_per_tower_activation(tiny_data):
    _, spec = tiny_data
    model = RankingModel(
        spec, ModelConfig(activation="relu", top_activation="smelu", bottom_mlp=(8,), top_mlp=(8, 4))
    )
    model(_batch(spec)[0])
    assert [type(a).__name__ for a in model.bottom.activations] != ["SmeLU"]
    assert all(isinstance(a, SmeLU) for a in model.top.activations)


def test_loss_is_mean_bce_with_b1_labels(tiny_data):
    _, spec = tiny_data
    model = RankingModel(spec, ModelConfig())
    features, labels = _batch(spec)
    probs = model(features).numpy().ravel()
    loss = float(RankingObjective().batch_loss(model, labels_2d(labels), model(features)))
    y = labels.numpy()
    want = -np.mean(y * np.log(probs) + (1 - y) * np.log(1 - probs))
    assert loss == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("interaction", ["cross", "dot"])
def test_interactions_build_and_train_one_step(tiny_data, interaction):
    _, spec = tiny_data
    # A fixed initialisation: the thresholded AUC's distance to the exact one depends on where the
    # untrained scores fall, so it must not depend on what ran before in this process (pytest -n).
    keras.utils.set_random_seed(1)
    conf = ModelConfig(
        interaction=interaction, embedding_dim=4, bottom_mlp=(8, 4), top_mlp=(8,), cross_low_rank=2
    )
    task = RankingTask(Experiment(model=conf, train=TrainConfig(learning_rate=0.01)), spec)
    model = task.build_model()
    optimizer = task.build_optimizer(model)
    objective = task.build_objective()
    features, labels = _batch(spec)
    before = [w.copy() for w in model.get_weights()]
    probs_before = model(features, training=True)
    want_loss = float(objective.batch_loss(model, labels_2d(labels), probs_before))
    task.train_step(model, optimizer, dict(features), labels)
    logs = {m.name: float(m.result()) for m in objective.metrics}
    assert list(logs) == ["loss", "auc", "logloss", "calibration"]
    assert logs["loss"] == pytest.approx(want_loss, rel=1e-5)  # metrics of the batch before the update
    # Keras' AUC on the same batch (the metric thresholds the scores: it is not the exact AUC)
    reference = ranking_metrics()[0]
    reference.update_state(labels_2d(labels), probs_before)
    assert logs["auc"] == pytest.approx(float(reference.result()), rel=1e-6)
    assert logs["auc"] == pytest.approx(auc(labels.numpy(), probs_before.numpy().ravel()), abs=1e-2)
    assert int(optimizer.iterations) == 1
    assert all(np.any(a != b) for a, b in zip(before, model.get_weights(), strict=True))  # all trained


def test_per_feature_embedding_dims_make_one_table_per_dim(tiny_data):
    _, spec = tiny_data
    model = RankingModel(spec, ModelConfig(embedding_dim=4, embedding_dims={"C1": 8, "M1": 8}))
    model.build_from_spec()
    assert sorted(t.shape[1] for t in model.embedding.tables) == [4, 8]


def test_config_errors(tiny_data):
    _, spec = tiny_data
    with pytest.raises(ValueError, match="unknown"):
        RankingModel(spec, ModelConfig(activation="no_such_activation"))
    with pytest.raises(ValueError, match="interaction 'dot' needs one embedding dim"):
        RankingModel(spec, ModelConfig(interaction="dot", embedding_dim=4, bottom_mlp=(8,)))
    with pytest.raises(ValueError, match=r"interaction must be one of \['cross', 'dot'\]"):
        RankingModel(spec, ModelConfig(interaction="mlp"))
    with pytest.raises(ValueError, match="unknown categorical features"):
        RankingModel(spec, ModelConfig(embedding_dims={"nope": 4}))


def test_labels_shaped_b1_under_a_strategy(tiny_data):
    """Inside a (one-device) MirroredStrategy the SUM loss must not raise and must equal the mean."""
    _, spec = tiny_data
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = RankingModel(spec, ModelConfig())
        model.build_from_spec()
        objective = RankingObjective()
    features, labels = _batch(spec)

    def eval_step(features, labels):
        labels = labels_2d(labels)
        probs = model(features, training=False)
        loss = objective.batch_loss(model, labels, probs)
        objective.record(model, labels, probs, loss, with_task_metrics=True)
        return loss

    loss = strategy.run(tf.function(eval_step), args=(features, labels))
    logs = {m.name: float(m.result()) for m in objective.metrics}
    probs = model(features).numpy().ravel()
    y = labels.numpy()
    want = -np.mean(y * np.log(probs) + (1 - y) * np.log(1 - probs))
    assert float(strategy.experimental_local_results(loss)[0]) == pytest.approx(want, rel=1e-4)
    assert logs["loss"] == pytest.approx(want, rel=1e-4)
    assert logs["logloss"] == pytest.approx(want, rel=1e-3)
