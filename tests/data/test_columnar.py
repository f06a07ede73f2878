"""The columnar training format: the same batches as the tf.Example shards, bit for bit, in every stream
configuration, and the same model; written by `recsys preprocess`; clear errors when it is missing."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from pipelines import columnar, feature_spec
from pipelines.config import PreprocessConfig
from pipelines.pipeline import run as run_pipeline
from pipelines.sources.csv import csv_schema
from recsys.compat import tf
from recsys.data.stream import StreamSpec, train_stream

HEADER = "user,country,price,age,tags,comment,outcome"
ROWS_PER_FILE = (700, 450, 530)  # three input files -> three shards of different lengths


def _toy_lines(offset: int, n: int) -> list[str]:
    lines = []
    for i in range(offset, offset + n):
        price = "" if i % 7 == 0 else f"{(i * 37) % 1000 / 10:g}"  # missing numeric values
        country = "" if i % 11 == 0 else f"c{(i * 13) % 17}"  # missing categorical values
        tags = ["a;b", "b", "", "c;a;d"][i % 4]  # a multi-valued feature, sometimes empty
        outcome = ["click", "view", "buy", "view", "view"][(i * 7) % 5]
        lines.append(f"u{i % 97},{country},{price},{20 + i % 50},{tags},n{i},{outcome}")
    return lines


@pytest.fixture(scope="module")
def toy_spec(tmp_path_factory, repo_root) -> feature_spec.FeatureSpec:
    """A toy CSV data set (numeric, categorical and multi-valued features, missing values) in three
    shards, with its columnar copy in chunks of 100 rows (so chunks end mid-shard and at shard ends)."""
    root = tmp_path_factory.mktemp("toy")
    inputs, offset = [], 0
    for i, n in enumerate(ROWS_PER_FILE):
        path = root / f"part{i}.csv"
        path.write_text("\n".join([HEADER] + _toy_lines(offset, n)) + "\n", encoding="utf-8")
        inputs.append(str(path))
        offset += n
    schema = csv_schema(str(repo_root / "configs/schemas/toy.yaml"), eval_fraction=0.1)
    out = root / "prep"
    run_pipeline(PreprocessConfig(source="csv", output=str(out), schema=schema, inputs=tuple(inputs),
                                  columnar_chunk_rows=100))
    return feature_spec.load(str(out))


def _batches(spec, stream: StreamSpec, start: int, steps: int) -> list[tuple[dict, np.ndarray]]:
    out = []
    for features, labels in train_stream(spec, stream, start, with_ids=True).take(steps):
        values = {k: v.to_list() if isinstance(v, tf.RaggedTensor) else v.numpy()
                  for k, v in features.items()}
        out.append((values, labels.numpy()))
    return out


def _same(a: list, b: list) -> None:
    assert len(a) == len(b) and a
    for (fa, ya), (fb, yb) in zip(a, b, strict=True):
        assert sorted(fa) == sorted(fb)
        for k in fa:
            if isinstance(fa[k], list):
                assert fa[k] == fb[k], k
            else:
                assert fa[k].dtype == fb[k].dtype, k
                np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)  # NaNs compare equal here
        np.testing.assert_array_equal(ya, yb)


def test_preprocess_writes_one_columnar_shard_per_train_shard(toy_spec):
    d = toy_spec.data
    assert d.columnar_pattern == columnar.PATTERN and d.columnar_chunk_rows == 100
    shards = sorted(tf.io.gfile.glob(toy_spec.path(d.columnar_pattern)))
    assert [os.path.basename(p) for p in shards] == [f"part-{i:05d}-of-00003.tfrecord" for i in range(3)]
    assert d.columnar_rows == toy_spec.counts.written_train > 1000
    # Chunks hold at most 100 rows and restart at every shard: more chunks than rows / 100.
    chunks = sum(1 for _ in tf.data.TFRecordDataset(shards))
    assert chunks > d.columnar_rows / 100 + 1


def test_the_pipelines_copy_has_the_bytes_of_a_reparse_of_its_train_shards(toy_spec, tmp_path):
    """Written from the processor's parsed columns (no TensorFlow in the workers), each columnar shard
    is byte for byte what converting its tf.Example train shard gives."""
    for i in range(3):
        converted = tmp_path / f"part-{i}"
        rows = columnar.convert_shard(toy_spec.path(f"train/part-{i:05d}-of-00003.tfrecord.gz"),
                                      str(converted), toy_spec, toy_spec.data.columnar_chunk_rows)
        assert rows > 300
        with open(columnar.shard_path(toy_spec.root, i, 3), "rb") as fh:
            assert fh.read() == converted.read_bytes()


@pytest.mark.parametrize(
    "stream, start",
    [
        (StreamSpec(global_batch=64), 0),  # no shuffling: file order
        (StreamSpec(global_batch=64, data_seed=5, shuffle_block=256), 0),
        (StreamSpec(global_batch=64, data_seed=5, shuffle_block=256), 23),  # a resume mid-block
        (StreamSpec(global_batch=48, data_seed=2, shuffle_block=300, validation_fraction=0.2), 31),
        (StreamSpec(global_batch=64, data_seed=1, shuffle_block=128, num_workers=2, worker_index=1), 7),
        (StreamSpec(global_batch=60, data_seed=1, shuffle_block=128, sharding="file", num_workers=3,
                    worker_index=2), 3),
        (StreamSpec(global_batch=64, data_seed=4, shuffle_block=512, replicas_per_worker=2), 5),
    ],
    ids=["file-order", "shuffled", "resumed", "validation", "worker-1-of-2", "file-sharding", "2-replicas"],
)
def test_both_formats_give_the_same_batches(toy_spec, stream, start):
    steps = 70  # past the end of the first epoch (~1,500 rows)
    tfexample = _batches(toy_spec, stream, start, steps)
    _same(_batches(toy_spec, dataclasses.replace(stream, columnar=True), start, steps), tfexample)
    # and the stream is a function of the step in both: a start at s continues the run from 0
    if start:  # (one element per local replica and step)
        skip = start * stream.replicas_per_worker
        _same(tfexample[:10], _batches(toy_spec, stream, 0, skip + 10)[skip:])


def test_a_missing_or_incomplete_columnar_copy_is_a_clear_error(toy_spec, tmp_path):
    from recsys.data.stream import use_columnar, worker_files

    without = dataclasses.replace(toy_spec, data=dataclasses.replace(toy_spec.data, columnar_pattern=""))
    assert not use_columnar(without, "auto") and use_columnar(toy_spec, "auto")
    assert not use_columnar(toy_spec, "tfexample")
    with pytest.raises(ValueError, match="data.format=columnar, but .* names no columnar shards"):
        use_columnar(without, "columnar")
    partial = dataclasses.replace(toy_spec, data=dataclasses.replace(
        toy_spec.data, columnar_pattern="train_columnar/part-0000[01]-*"))
    with pytest.raises(ValueError, match="2 columnar shards match .* for 3 train shards"):
        worker_files(partial, StreamSpec(global_batch=8, columnar=True))


def test_add_columnar_converts_an_old_output_to_the_same_rows(toy_spec, tmp_path):
    """An output written without the columnar copy (an older version) gets it afterwards."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(toy_spec.root, old, ignore=shutil.ignore_patterns(columnar.COLUMNAR_DIR))
    stripped = dataclasses.replace(feature_spec.load(str(old)), data=dataclasses.replace(
        toy_spec.data, columnar_pattern="", columnar_chunk_rows=0, columnar_rows=0))
    stripped.save(str(old))
    converted = columnar.add_columnar(str(old), chunk_rows=64)
    assert converted.data.columnar_rows == toy_spec.counts.written_train
    stream = StreamSpec(global_batch=32, data_seed=9, shuffle_block=200, columnar=True)
    _same(_batches(converted, stream, 0, 60), _batches(toy_spec, stream, 0, 60))


def test_the_format_is_neutral_for_training_and_for_a_resume(toy_spec, tmp_path):
    """The same config trained from either format ends with the same weights (same digest, PD 0), and
    a run stopped under one format resumes under the other to those weights too."""
    from recsys import config as cfg
    from recsys.train.trainer import train

    base = [f"data.spec_dir={toy_spec.root}", "train.steps=30", "train.eval_every=15", "train.verbose=0",
            "data.batch_size=64", "data.eval_batch_size=256", "data.shuffle_buffer=256",
            "export.enabled=false", "train.tensorboard=false", "train.backup_every_steps=5",
            "train.steps_per_execution=4", "model.activation=smelu"]

    def run(directory: str, data_format: str, **kw):
        return train(cfg.load("synthetic_small", base + [f"data.format={data_format}"]), directory,
                     predict_eval=True, **kw)

    a = run(str(tmp_path / "tfexample"), "tfexample")
    b = run(str(tmp_path / "columnar"), "columnar")
    assert a.fingerprint["weights_sha256"] == b.fingerprint["weights_sha256"]
    assert a.fingerprint["config_sha256"] == b.fingerprint["config_sha256"]
    np.testing.assert_array_equal(a.eval_predictions, b.eval_predictions)  # PD = 0
    switched = str(tmp_path / "switched")
    assert run(switched, "tfexample", stop_at_step=12).stopped_at == 12
    c = run(switched, "columnar")
    assert c.fingerprint["weights_sha256"] == a.fingerprint["weights_sha256"]
    assert [r["step"] for r in c.fingerprint["resumes"]] == [12]
    assert c.fingerprint["bitwise_caveats"] == []  # not a change: nothing to caveat


@pytest.mark.parametrize("block", [0, 256])
@pytest.mark.parametrize("columnar_", [False, True], ids=["tfexample", "columnar"])
def test_the_workers_rows_make_up_the_global_batches(toy_spec, block, columnar_):
    """With global-batch sharding, worker i's batch k is its slice of the one-worker batch k (each
    worker drops the others' rows before copying anything), also from a resume point mid-epoch."""
    one = StreamSpec(global_batch=60, data_seed=3, shuffle_block=block, columnar=columnar_)
    for start in (0, 17):
        whole = _batches(toy_spec, one, start, 40)  # past an epoch end (~1,500 rows / 60)
        parts = [_batches(toy_spec, dataclasses.replace(one, num_workers=3, worker_index=w), start, 40)
                 for w in range(3)]
        for k, (features, labels) in enumerate(whole):
            np.testing.assert_array_equal(np.concatenate([p[k][1] for p in parts]), labels)
            for name in ("__example_id__", "price", "country"):
                np.testing.assert_array_equal(np.concatenate([p[k][0][name] for p in parts]), features[name])
            assert sum((p[k][0]["tags"] for p in parts), []) == features["tags"]


def test_the_run_identity_covers_the_columnar_copy(toy_spec, tmp_path):
    """The trainer reads the columnar shards by default: a change to them is a data change for a
    resume, whatever data.format says (the format stays a neutral setting)."""
    import shutil

    from recsys.config import loading
    from recsys.train import run_state

    copy = tmp_path / "data"
    shutil.copytree(toy_spec.root, copy)
    ident = {fmt: run_state.identity(loading.load("synthetic_small", [f"data.spec_dir={copy}",
                                                                      f"data.format={fmt}"]), 1)
             for fmt in ("auto", "tfexample")}
    shards = ident["auto"].data["shards"]
    columnar_shards = sorted(k for k in shards if k.startswith(columnar.COLUMNAR_DIR + "/"))
    assert len(columnar_shards) == 3 and ident["tfexample"].data == ident["auto"].data
    victim = copy / columnar_shards[0]
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x00")
    state = run_state.RunState(ident["auto"].config_sha256, ident["auto"].config, ident["auto"].data, 1, 0.0)
    after = run_state.identity(loading.load("synthetic_small", [f"data.spec_dir={copy}"]), 1)
    assert run_state.differences(state, after) == {"data": [f"shard {columnar_shards[0]} changed"]}
