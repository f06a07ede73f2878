"""The ranking model: registry activations everywhere, loss reduction, shapes, config errors."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.activations.smelu import SmeLU
from recsys.compat import keras, tf
from recsys.config import ModelConfig
from recsys.data import make_dataset
from recsys.models import RankingModel


def _batch(spec, n=64):
    return next(iter(make_dataset(spec, "eval", n, training=False)))


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
    loss = float(model.compute_loss((features, labels)))
    y = labels.numpy()
    want = -np.mean(y * np.log(probs) + (1 - y) * np.log(1 - probs))
    assert loss == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("interaction", ["cross", "dot"])
def test_interactions_build_and_train_one_step(tiny_data, interaction):
    _, spec = tiny_data
    conf = ModelConfig(
        interaction=interaction, embedding_dim=4, bottom_mlp=(8, 4), top_mlp=(8,), cross_low_rank=2
    )
    model = RankingModel(spec, conf)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    features, labels = _batch(spec)
    logs = model.train_on_batch(features, labels, return_dict=True)
    assert set(logs) == {"loss", "auc", "logloss", "calibration"}
    assert 0.0 <= logs["auc"] <= 1.0


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
        model.compile(optimizer=keras.optimizers.SGD(0.0))
    features, labels = _batch(spec)
    ds = tf.data.Dataset.from_tensors((features, labels))
    logs = model.evaluate(ds, return_dict=True, verbose=0)
    probs = model(features).numpy().ravel()
    y = labels.numpy()
    want = -np.mean(y * np.log(probs) + (1 - y) * np.log(1 - probs))
    assert logs["loss"] == pytest.approx(want, rel=1e-4)
    assert logs["logloss"] == pytest.approx(want, rel=1e-3)
