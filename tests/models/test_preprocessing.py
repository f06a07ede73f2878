"""Golden numbers for the feature-spec transforms that run inside the model graph."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipelines.feature_spec import Feature, FeatureSpec, Label, NumericStats, NumericTransform
from recsys.compat import tf
from recsys.models.preprocessing import FeatureTransform, missing_batch, transform_numeric


def _spec(tmp_path, vocab=("a", "b", "c"), vocabulary_size=None) -> FeatureSpec:
    (tmp_path / "vocab").mkdir(exist_ok=True)
    (tmp_path / "vocab" / "cat.txt").write_text("".join(v + "\n" for v in vocab))
    feats = (
        Feature(
            name="n",
            kind="numeric",
            dtype="float32",
            default=3.0,
            transform=NumericTransform(clip_min=0.0, clip_max=99.0, log1p=True),
            stats=NumericStats(mean=1.0, variance=4.0),
        ),
        Feature(
            name="cat",
            kind="categorical",
            dtype="string",
            encoding="vocabulary",
            vocabulary_file="vocab/cat.txt",
            vocabulary_size=len(vocab) if vocabulary_size is None else vocabulary_size,
            num_oov_buckets=2,
        ),
        Feature(name="h", kind="categorical", dtype="string", encoding="hash", hash_buckets=10),
        Feature(
            name="m",
            kind="multi_categorical",
            dtype="string",
            encoding="vocabulary",
            vocabulary_file="vocab/cat.txt",
            vocabulary_size=len(vocab),
            num_oov_buckets=1,
            separator="|",
            max_values=3,
        ),
    )
    return FeatureSpec(dataset="t", label=Label(), features=feats, root=str(tmp_path))


def test_numeric_transform_golden():
    f = Feature(
        name="n",
        kind="numeric",
        dtype="float32",
        default=3.0,
        transform=NumericTransform(clip_min=0.0, clip_max=99.0, log1p=True),
        stats=NumericStats(mean=1.0, variance=4.0),
    )
    x = tf.constant([math.nan, -5.0, 0.0, math.e - 1, 1000.0])
    got = transform_numeric(x, f).numpy()
    # nan -> default 3 -> log1p(3); -5 -> clip 0 -> 0; e-1 -> 1; 1000 -> clip 99 -> log(100)
    want = (np.array([math.log(4.0), 0.0, 0.0, 1.0, math.log(100.0)]) - 1.0) / 2.0
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_numeric_without_transform_and_zero_variance():
    f = Feature(
        name="n", kind="numeric", dtype="float32", default=-1.0, stats=NumericStats(mean=2.0, variance=0.0)
    )
    got = transform_numeric(tf.constant([math.nan, 5.0]), f).numpy()
    np.testing.assert_allclose(got, [-3.0, 3.0])


def test_vocabulary_oov_and_hash_ids(tmp_path):
    spec = _spec(tmp_path)
    layer = FeatureTransform(spec)
    raw = {
        "n": tf.constant([1.0, math.nan]),
        "cat": tf.constant(["b", "zzz"]),
        "h": tf.constant(["x", ""]),
        "m": tf.ragged.constant([["c", "a", "nope"], []], dtype=tf.string),
    }
    numeric, ids = layer(raw)
    assert numeric.shape == (2, 1)
    assert ids["cat"].numpy()[0] == 1  # line number of "b"
    assert 3 <= ids["cat"].numpy()[1] < 5  # one of the two OOV buckets after the 3 entries
    want_h = tf.strings.to_hash_bucket_fast(["x", ""], 10).numpy()
    np.testing.assert_array_equal(ids["h"].numpy(), want_h)
    assert ids["m"].to_list() == [[2, 0, 3], []]  # 1 OOV bucket -> id 3


def test_missing_batch_builds(tmp_path):
    spec = _spec(tmp_path)
    numeric, ids = FeatureTransform(spec)(missing_batch(spec))
    np.testing.assert_allclose(numeric.numpy(), [[(math.log(4.0) - 1.0) / 2.0]], rtol=1e-6)
    assert ids["m"].to_list() == [[]]


def test_vocabulary_size_mismatch_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="has 3 lines but the feature spec says"):
        FeatureTransform(_spec(tmp_path, vocabulary_size=5))


def test_missing_vocabulary_file_is_a_clear_error(tmp_path):
    spec = _spec(tmp_path)
    (tmp_path / "vocab" / "cat.txt").unlink()
    with pytest.raises(FileNotFoundError, match="vocabulary file of feature 'cat' not found"):
        FeatureTransform(spec)
