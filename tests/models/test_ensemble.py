"""model.ensemble: N towers with independent initialisations behind one transform, their probabilities
averaged; one export that reloads to the same predictions; exact resume; size below 1 refused."""

from __future__ import annotations

import numpy as np
import pytest

from recsys import config as cfg
from recsys.compat import tf
from recsys.config import ModelConfig
from recsys.data import make_dataset
from recsys.export import raw_batch
from recsys.models import RankingModel
from recsys.repro.compare import export_weights_digest
from recsys.train.trainer import train

SMALL = ModelConfig(bottom_mlp=(8, 4), top_mlp=(8, 4))
RUN = ["train.steps=12", "train.eval_every=6", "train.verbose=0", "data.batch_size=256",
       "data.shuffle_buffer=1024", "train.tensorboard=false", "train.backup_every_steps=4",
       "model.ensemble=2"]


def _features(spec, n=32):
    return next(iter(make_dataset(spec, "eval", n)))[0]


def test_prediction_is_the_mean_of_the_towers_probabilities(tiny_data):
    _, spec = tiny_data
    tf.keras.utils.set_random_seed(3)
    model = RankingModel(spec, ModelConfig(bottom_mlp=(8, 4), top_mlp=(8, 4), ensemble=3))
    features = _features(spec)
    z = model.member_logits(features).numpy()
    assert z.shape == (32, 3)
    want = (1 / (1 + np.exp(-z.astype(np.float64)))).mean(axis=1, keepdims=True)
    np.testing.assert_allclose(model(features).numpy(), want, rtol=1e-5)
    logit = model.logits(features).numpy()  # one logit: that of the averaged probability
    np.testing.assert_allclose(logit, np.log(want / (1 - want)), rtol=1e-4, atol=1e-5)
    # Independent initialisations: the towers' predictions and weights differ pairwise.
    assert np.all(np.abs(z[:, 0] - z[:, 1]) > 0) and np.all(np.abs(z[:, 1] - z[:, 2]) > 0)
    heads = [m.head.kernel.numpy() for m in model.members]
    assert not np.array_equal(heads[0], heads[1])


def test_ensemble_has_n_towers_and_one_transform(tiny_data):
    _, spec = tiny_data
    single = RankingModel(spec, SMALL)
    single.build_from_spec()
    double = RankingModel(spec, ModelConfig(bottom_mlp=(8, 4), top_mlp=(8, 4), ensemble=2))
    double.build_from_spec()
    shared = sum(int(np.prod(v.shape)) for v in single.transform.weights)  # the one transform's
    assert single.count_params() > shared
    assert double.count_params() == 2 * single.count_params() - shared
    assert len(double.trainable_variables) == 2 * len(single.trainable_variables)
    assert not single.members and not any("member" in v.name for v in single.variables)
    assert [m.transform for m in double.members] == [None, None] and double.transform is not None


@pytest.mark.parametrize("size", [0, -1])
def test_ensemble_below_one_is_refused(tiny_data, size):
    root, _ = tiny_data
    with pytest.raises(ValueError, match=r"ensemble must be >= 1"):
        ModelConfig(ensemble=size)
    with pytest.raises(ValueError, match=r"ensemble must be >= 1"):
        cfg.load("synthetic_small", [f"data.spec_dir={root}", f"model.ensemble={size}"])


@pytest.fixture(scope="module")
def uninterrupted(tiny_data, tmp_path_factory):
    root, _ = tiny_data
    exp = cfg.load("synthetic_small", [f"data.spec_dir={root}", *RUN, "export.model_name=ens"])
    return train(exp, str(tmp_path_factory.mktemp("ens")), predict_eval=True)


def test_export_reloads_to_the_trained_predictions(tiny_data, uninterrupted):
    _, spec = tiny_data
    features = _features(spec, 16)
    loaded = tf.saved_model.load(uninterrupted.export_path)
    raw = {k: tf.constant(v) for k, v in raw_batch(features, spec).items()}
    got = loaded.signatures["serving_default"](**raw)["probability"].numpy()
    np.testing.assert_allclose(got.ravel(), uninterrupted.model(features).numpy().ravel(), rtol=1e-5,
                               atol=1e-6)
    # The export holds both towers: the fingerprint's digest is the export's variables' digest.
    assert export_weights_digest(uninterrupted.export_path) == uninterrupted.fingerprint["weights_sha256"]


def test_stopped_ensemble_resumes_to_identical_weights(tiny_data, tmp_path, uninterrupted):
    root, _ = tiny_data
    exp = cfg.load("synthetic_small", [f"data.spec_dir={root}", *RUN, "export.enabled=false"])
    stopped = train(exp, str(tmp_path), stop_at_step=5)
    assert stopped.stopped_at == 5 and not stopped.finished
    resumed = train(exp, str(tmp_path), predict_eval=True)
    assert [r["step"] for r in resumed.fingerprint["resumes"]] == [5]
    assert resumed.fingerprint["weights_sha256"] == uninterrupted.fingerprint["weights_sha256"]
    np.testing.assert_array_equal(resumed.eval_predictions, uninterrupted.eval_predictions)
