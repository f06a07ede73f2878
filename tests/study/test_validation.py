"""Model selection without the eval split: a hash holdout of train, never in the stream, picks the step."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import pipelines.feature_spec as feature_spec
from recsys.compat import tf
from recsys.data.input import shard_files
from recsys.data.stream import StreamSpec, count_records, in_validation, train_stream, validation_dataset
from recsys.repro.stats import bootstrap_study
from recsys.study.analysis import NO_SELECTION_RULE, SELECTION_RULE, VariantRecords, analyse

FRACTION = 0.2


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> feature_spec.FeatureSpec:
    out = tmp_path_factory.mktemp("data") / "synthetic"
    subprocess.run([sys.executable, "-m", "recsys.cli", "preprocess", "--source=synthetic", "--rows=2000",
                    f"--output={out}"], check=True, capture_output=True, timeout=300)
    return feature_spec.load(str(out))


def _all_train_records(spec) -> tuple[np.ndarray, np.ndarray]:
    """(ids, in-validation flags) of every train record, ids as the stream's visit-log fingerprints."""
    ds = tf.data.TFRecordDataset(shard_files(spec, "train"), compression_type=spec.data.compression or None)
    serialized = tf.constant([r.numpy() for r in ds])
    ids = tf.strings.to_hash_bucket_fast(serialized, tf.int64.max).numpy()
    return ids, in_validation(serialized, FRACTION).numpy()


def _stream_ids(spec, stream: StreamSpec, start: int, steps: int) -> list[list[int]]:
    ds = train_stream(spec, stream, start, with_ids=True)
    return [f["__example_id__"].numpy().tolist() for f, _ in ds.take(steps)]


def test_the_train_stream_never_reads_the_validation_records(spec):
    ids, held = _all_train_records(spec)
    assert 0.15 < held.mean() < 0.25  # about FRACTION of the records, chosen by hash
    n_train = int((~held).sum())
    assert count_records(spec, shard_files(spec, "train"), FRACTION) == n_train
    stream = StreamSpec(global_batch=64, data_seed=3, shuffle_block=256, validation_fraction=FRACTION)
    steps = 2 * n_train // 64 + 1  # more than two epochs
    seen = [i for batch in _stream_ids(spec, stream, 0, steps) for i in batch]
    assert set(seen) == set(ids[~held].tolist())  # every train record, no validation record
    # Still a pure function of the step: started at step 17, the stream continues the same batches.
    assert _stream_ids(spec, stream, 17, 5) == _stream_ids(spec, stream, 0, 22)[17:]
    labels = np.concatenate([y.numpy() for _, y in validation_dataset(spec, FRACTION, 100)])
    assert labels.shape == (int(held.sum()),)
    # Without a fraction the stream reads everything, as before.
    plain = StreamSpec(global_batch=64, data_seed=3, shuffle_block=256)
    everything = {i for batch in _stream_ids(spec, plain, 0, len(ids) // 64 + 1) for i in batch}
    assert everything == set(ids.tolist())
    with pytest.raises(ValueError, match=r"validation_fraction must be in \[0, 1\)"):
        StreamSpec(global_batch=64, validation_fraction=1.0)


def _records(rng, steps, n, noise_by_step):
    base = rng.uniform(0.05, 0.95, n)
    return {s: np.clip(base + rng.normal(0, noise_by_step[s], n), 0.01, 0.99) for s in steps}


def test_each_variant_is_reported_at_its_best_validation_step():
    rng = np.random.default_rng(0)
    n, steps = 400, (10, 20, 30)
    y_val = (rng.uniform(size=n) < 0.5).astype(np.float64)
    y_eval = (rng.uniform(size=n) < 0.5).astype(np.float64)

    def validation_peaking_at(best):
        # Predictions that track the labels best at step ``best``.
        return {s: np.clip(y_val * (0.8 if s == best else 0.2) + rng.uniform(0, 0.5, n), 0.01, 0.99)
                for s in steps}

    variants = []
    for name, best in (("a", 20), ("b", 10)):
        records = tuple(_records(rng, steps, n, {10: 0.1, 20: 0.05, 30: 0.2}) for _ in range(3))
        validation = tuple(validation_peaking_at(best) for _ in range(3))
        variants.append(VariantRecords(name, records, ({},) * 3, validation, y_val))
    assert [v.selected_step() for v in variants] == [20, 10]
    result = analyse(variants, y_eval, None, draws=50, seed=0)
    assert result.selected == {"a": 20, "b": 10} and result.selection == SELECTION_RULE
    expected = bootstrap_study({"a": variants[0].at(20), "b": variants[1].at(10)}, y_eval, None, 50, 0)
    assert result.final.variant("b").relative_pd.estimate == expected.variant("b").relative_pd.estimate
    assert result.final.variant("b").pd_ratio.estimate == expected.variant("b").pd_ratio.estimate
    assert [p["selected"] for p in result.over_time["b"]] == [True, False, False]
    assert "validation_auc" in result.over_time["a"][0]
    # Without a validation split: the last step, as before.
    bare = [VariantRecords(v.variant, v.records, v.plans) for v in variants]
    plain = analyse(bare, y_eval, None, draws=50, seed=0)
    assert plain.selected == {"a": 30, "b": 30} and plain.selection == NO_SELECTION_RULE
    assert plain.final is plain.by_step[30]
