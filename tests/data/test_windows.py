"""Training on selected time windows (`data.windows`): the stream, its epoch length, the validation split
and the data fingerprint read only the selected windows' shards; a window the spec lacks is refused."""

from __future__ import annotations

import os

import numpy as np
import pytest

from pipelines import feature_spec
from pipelines.pipeline import run as run_pipeline
from recsys.compat import tf
from recsys.config import loading
from recsys.config.schema import DataConfig
from recsys.data.input import shard_files
from recsys.data.stream import (
    EXAMPLE_ID,
    StreamSpec,
    count_records,
    in_validation,
    train_files,
    train_stream,
    validation_dataset,
)
from tests.pipelines.test_windows import synthetic_config


@pytest.fixture(scope="module")
def spec(run_once) -> feature_spec.FeatureSpec:
    """The windowed synthetic output of tests/pipelines/test_windows.py (900 train rows per window)."""
    out = run_once("windows-synthetic", lambda d: run_pipeline(synthetic_config(str(d / "prep"), 3)))
    return feature_spec.load(str(out / "prep"))


def _ids(spec: feature_spec.FeatureSpec, pattern: str) -> list[int]:
    ds = tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(spec.path(pattern))), compression_type="GZIP")
    return [int(tf.strings.to_hash_bucket_fast(r, tf.int64.max)) for r in ds]


def _stream(spec, steps: int, **kw) -> list[tuple[dict, np.ndarray]]:
    out = []
    for features, labels in train_stream(spec, StreamSpec(global_batch=100, **kw), with_ids=True).take(steps):
        out.append(({k: v.numpy() for k, v in features.items()}, labels.numpy()))
    return out


def test_the_stream_reads_only_the_selected_window(spec):
    """Window 1's 900 rows in their order (no shuffling), then the next epoch starts it again."""
    batches = _stream(spec, 10, windows=(1,), columnar=True)
    ids = np.concatenate([f[EXAMPLE_ID] for f, _ in batches]).tolist()
    window1 = _ids(spec, spec.windows[1].train_pattern)
    assert len(window1) == 900 and ids[:900] == window1 and ids[900:] == window1[:100]
    others = _ids(spec, spec.windows[0].train_pattern) + _ids(spec, spec.windows[2].train_pattern)
    assert len(others) == 1800 and not set(window1) & set(others)


@pytest.mark.parametrize("windows", [(1,), (0, 2)])
def test_both_formats_give_the_same_batches_of_the_selected_windows(spec, windows):
    a = _stream(spec, 12, windows=windows, columnar=True, shuffle_block=128, data_seed=5)
    b = _stream(spec, 12, windows=windows, columnar=False, shuffle_block=128, data_seed=5)
    for (fa, ya), (fb, yb) in zip(a, b, strict=True):
        assert sorted(fa) == sorted(fb)
        for k in fa:
            np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)
        np.testing.assert_array_equal(ya, yb)
    allowed = set(sum((_ids(spec, spec.windows[w].train_pattern) for w in windows), []))
    assert set(np.concatenate([f[EXAMPLE_ID] for f, _ in a]).tolist()) <= allowed


def test_epoch_length_and_validation_split_are_the_windows(spec):
    files = train_files(spec, (0, 2), columnar=True)
    assert [f.rsplit("/", 1)[1][:3] for f in files] == ["w0-"] * 3 + ["w2-"] * 3
    assert count_records(spec, files, 0.0, True, (0, 2)) == 1800  # from the spec's window rows
    assert count_records(spec, train_files(spec, (), True), 0.0, True) == 2700
    kept = count_records(spec, train_files(spec, (1,)), 0.2, False, (1,))
    held = np.concatenate([y.numpy() for _, y in validation_dataset(spec, 0.2, 64, (1,))])
    records = tf.data.TFRecordDataset(train_files(spec, (1,)), compression_type="GZIP")
    members = [tf.io.parse_single_example(r, {"label": tf.io.FixedLenFeature([1], tf.float32)})["label"]
               for r in records if in_validation(r, 0.2)]
    assert kept + len(held) == 900 and 100 < len(held) < 260
    np.testing.assert_array_equal(held, np.concatenate(members))  # window 1's held-out rows, in order


def test_a_window_the_spec_lacks_is_a_clear_error(spec, tmp_path):
    with pytest.raises(ValueError, match=r"has no window 3; it has windows \[0, 1, 2\]"):
        shard_files(spec, "train", (1, 3))
    with pytest.raises(ValueError, match="has no window 3"):
        _stream(spec, 1, windows=(3,))
    unwindowed = feature_spec.FeatureSpec(dataset="x", label=feature_spec.Label(), features=())
    with pytest.raises(ValueError, match=r"it has no windows \(it was written without"):
        unwindowed.train_patterns((0,))
    with pytest.raises(ValueError, match="windows must be increasing window indexes"):
        DataConfig(windows=(2, 1))
    from recsys.train.session import check_config

    with pytest.raises(ValueError, match="has no window 7"):
        check_config(loading.load("synthetic_small", [f"data.spec_dir={spec.root}", "data.windows=[7]"]))


def test_the_data_fingerprint_covers_exactly_the_files_read(spec):
    from recsys.train import run_state

    def identity(*overrides: str) -> run_state.RunIdentity:
        config = loading.load("synthetic_small", [f"data.spec_dir={spec.root}", *overrides])
        return run_state.identity(config, 1)

    one = identity("data.windows=[1]")
    assert one.config["data"]["windows"] == [1] and one.data["windows"] == [1]
    shards = sorted(one.data["shards"])
    assert shards == sorted([f"eval/part-0000{i}-of-00003.tfrecord.gz" for i in range(3)]
                            + [f"train/w1-part-0000{i}-of-00003.tfrecord.gz" for i in range(3)]
                            + [f"train_columnar/w1-part-0000{i}-of-00003.tfrecord" for i in range(3)])
    every = identity()
    assert every.data["windows"] == [] and len(every.data["shards"]) == 3 + 9 + 9
    assert identity("data.windows=[0,1,2]").data["digest"] == every.data["digest"]
    assert identity("data.windows=[2]").data["digest"] != one.data["digest"]


def test_add_columnar_writes_each_windows_copy(spec, tmp_path):
    """An output written without the columnar copy gets one per window, the same rows as preprocessing's."""
    import dataclasses
    import shutil

    from pipelines import columnar

    copy = tmp_path / "prep"
    shutil.copytree(spec.root, copy)
    shutil.rmtree(copy / "train_columnar")
    data = dataclasses.replace(spec.data, columnar_pattern="", columnar_chunk_rows=0, columnar_rows=0)
    parts = tuple(dataclasses.replace(w, columnar_pattern="") for w in spec.windows)
    bare = dataclasses.replace(spec, data=data, windows=parts)
    bare.save(str(copy))
    converted = columnar.add_columnar(str(copy), chunk_rows=100)
    assert converted.windows == spec.windows and converted.data == spec.data
    assert sorted(os.listdir(copy / "train_columnar")) == sorted(os.listdir(spec.path("train_columnar")))
    again = feature_spec.load(str(copy))
    for w in (0, 2):
        np.testing.assert_array_equal(
            np.concatenate([f[EXAMPLE_ID] for f, _ in _stream(again, 9, windows=(w,), columnar=True)]),
            np.concatenate([f[EXAMPLE_ID] for f, _ in _stream(spec, 9, windows=(w,), columnar=True)]))
