"""The small synthetic writer: shards, vocabularies and spec follow the feature-spec contract."""

from __future__ import annotations

import os

import tensorflow as tf

from pipelines import feature_spec
from pipelines.synthetic_spec import SyntheticLayout, write_synthetic


def _examples(path: str) -> list[tf.train.Example]:
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path, "GZIP")]


def test_shards_hold_the_rows_the_spec_counts_encoded_as_it_says(tmp_path):
    layout = SyntheticLayout(num_numeric=2, num_categorical=3, num_multi=1, cardinality=10, missing_rate=0.2)
    spec = write_synthetic(str(tmp_path), num_train=90, num_eval=30, layout=layout, num_train_shards=3)
    assert feature_spec.load(str(tmp_path / "feature_spec.json")).to_dict() == spec.to_dict()
    train = [_examples(p) for p in sorted(tf.io.gfile.glob(spec.path(spec.data.train_pattern)))]
    assert [len(s) for s in train] == [30, 30, 30]
    assert len(_examples(spec.path("eval/part-00000-of-00001.tfrecord.gz"))) == spec.counts.written_eval == 30
    rows = [ex.features.feature for shard in train for ex in shard]
    assert {r["label"].float_list.value[0] for r in rows} == {0.0, 1.0}
    numeric_missing = sum("I1" not in r for r in rows)
    assert numeric_missing == spec.feature("I1").stats.missing > 0  # a missing value is absent
    assert 0 < sum("C1" not in r for r in rows) < len(rows)
    assert all(len(r["M1"].bytes_list.value) <= 4 for r in rows)  # multi-valued: always present
    assert any(len(r["M1"].bytes_list.value) == 0 for r in rows)
    c1 = spec.feature("C1")
    with open(spec.path(c1.vocabulary_file), encoding="utf-8") as fh:
        vocab = fh.read().splitlines()
    assert len(vocab) == c1.vocabulary_size
    assert {r["C1"].bytes_list.value[0].decode() for r in rows if "C1" in r} == set(vocab)
    assert spec.feature("C3").encoding == "hash"  # every third categorical is hashed
    assert not os.path.exists(tmp_path / "vocab" / "C3.txt")
