"""`recsys preprocess --windows N`: consecutive time windows of the train split, in their own shards,
one spec for all (synthetic by row order, MovieLens by timestamp, a schema by its time column)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from pipelines import feature_spec, windows
from pipelines.config import PreprocessConfig, SyntheticParams
from pipelines.pipeline import clean_output
from pipelines.pipeline import run as run_pipeline
from pipelines.sources.criteo import criteo_schema
from pipelines.sources.csv import csv_schema
from pipelines.sources.movielens import movielens_schema
from pipelines.sources.synthetic import DEFAULT_CARDINALITIES, SyntheticCriteo

ROWS = 3000


def synthetic_config(output: str, windows: int) -> PreprocessConfig:
    """3,000 synthetic rows in three chunks of 1,000 (so windows cross chunks), columnar chunks of 100."""
    return PreprocessConfig(source="synthetic", output=output, schema=criteo_schema(name="synthetic"),
                            synthetic=SyntheticParams(rows=ROWS, seed=3, chunk_rows=1000),
                            columnar_chunk_rows=100, windows=windows)


@pytest.fixture(scope="module")
def synthetic_windows(run_once) -> feature_spec.FeatureSpec:
    out = run_once("windows-synthetic", lambda d: run_pipeline(synthetic_config(str(d / "prep"), 3)))
    return feature_spec.load(str(out / "prep"))


def _records(spec: feature_spec.FeatureSpec, pattern: str) -> list[bytes]:
    from recsys.compat import tf

    files = sorted(tf.io.gfile.glob(spec.path(pattern)))
    assert files, pattern
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _canon_example(raw: bytes) -> tuple:
    from recsys.compat import tf

    f = tf.train.Example.FromString(raw).features.feature
    ints = tuple(f[f"I{j}"].float_list.value[0] if f"I{j}" in f else None for j in range(1, 14))
    cats = tuple(f[f"C{j}"].bytes_list.value[0].decode() if f"C{j}" in f else None for j in range(1, 27))
    return f["label"].float_list.value[0], ints, cats


def _canon_line(line: bytes) -> tuple:
    fields = line.decode().split("\t")
    ints = tuple(float(np.float32(float(v))) if v else None for v in fields[1:14])
    return float(fields[0]), ints, tuple(v or None for v in fields[14:40])


def test_synthetic_windows_are_the_rows_in_order(synthetic_windows):
    """Window 0, 1, 2 and then eval hold the generated rows in their order, each row once: the windows
    are disjoint, cover the train split, follow each other in time, and eval comes after them all."""
    spec = synthetic_windows
    lines = SyntheticCriteo(3, DEFAULT_CARDINALITIES, 1.1).lines(0, ROWS)
    per_window = [[_canon_example(r) for r in _records(spec, w.train_pattern)] for w in spec.windows]
    evals = [_canon_example(r) for r in _records(spec, spec.data.eval_pattern)]
    assert sum(per_window, []) + evals == [_canon_line(ln) for ln in lines]
    assert [len(w) for w in per_window] == [w.rows for w in spec.windows] == [900, 900, 900]
    assert sum(w.rows for w in spec.windows) == spec.counts.written_train == 2700
    assert spec.eval_window == feature_spec.Span(rows=300, order="row_order", first=0.9, last=2999 / 3000)
    assert [(w.index, w.order, w.first, w.last) for w in spec.windows] == [
        (i, "row_order", i * 0.3, (900 * i + 899) / 3000) for i in range(3)]
    assert spec.split.method == "row_order" and spec.split.time_threshold == pytest.approx(0.9)
    assert spec.data.num_train_shards == 9 and spec.data.train_pattern == "train/w*-part-*.tfrecord.gz"
    names = sorted(os.listdir(spec.path("train")))
    assert names[0] == "w0-part-00000-of-00003.tfrecord.gz" and len(names) == 9
    assert sorted(os.listdir(spec.path("train_columnar")))[-1] == "w2-part-00002-of-00003.tfrecord"
    assert [w.columnar_pattern for w in spec.windows] == [
        f"train_columnar/w{i}-part-*.tfrecord" for i in range(3)]
    assert spec.data.columnar_rows == 2700


def test_one_vocabulary_for_every_window(synthetic_windows):
    """The vocabularies count every train window: a value first seen in window 2 has its own id."""
    spec = synthetic_windows
    c1 = spec.feature("C1")  # 1,460 values, most of them rare: some appear only in the last window
    c1_seen = [{_canon_example(r)[2][0] for r in _records(spec, w.train_pattern)} for w in spec.windows]
    c1_late = c1_seen[2] - c1_seen[0] - c1_seen[1] - {None}
    assert c1_late and c1.encoding == "vocabulary"
    with open(spec.path(c1.vocabulary_file), encoding="utf-8") as fh:
        c1_vocab = fh.read().split()
    assert c1_late <= set(c1_vocab) and len(c1_vocab) == len(set().union(*c1_seen) - {None})


def test_unwindowed_spec_has_no_window_keys_and_old_specs_load(synthetic_windows, tmp_path):
    d = synthetic_windows.to_dict()
    assert [w["index"] for w in d["windows"]] == [0, 1, 2] and d["eval_window"]["rows"] == 300
    old = {k: v for k, v in d.items() if k not in ("windows", "eval_window")}
    (tmp_path / "feature_spec.json").write_text(json.dumps(old))
    spec = feature_spec.load(str(tmp_path))
    assert spec.windows == () and spec.eval_window is None and "windows" not in spec.to_dict()
    assert feature_spec.FeatureSpec.from_dict(d).windows == synthetic_windows.windows


def test_an_unwindowed_run_cleans_the_windows_away(tmp_path):
    out = str(tmp_path / "prep")
    summary = run_pipeline(synthetic_config(out, 2))
    assert "time windows (row_order): w0 1,350 · w1 1,350; eval after them" in summary.table()
    assert sorted(os.listdir(os.path.join(out, "train")))[0].startswith("w0-part-")
    clean_output(out)
    assert os.listdir(os.path.join(out, "train")) == os.listdir(os.path.join(out, "train_columnar")) == []
    assert "time windows" not in run_pipeline(synthetic_config(out, 0)).table()
    assert sorted(os.listdir(os.path.join(out, "train"))) == [
        f"part-0000{i}-of-00003.tfrecord.gz" for i in range(3)]
    spec = feature_spec.load(out)
    assert spec.windows == () and spec.split.method == "hash"


@pytest.mark.parametrize("windows", [1, -1])
def test_windows_must_be_zero_or_at_least_two(tmp_path, windows):
    with pytest.raises(ValueError, match="windows must be 0"):
        synthetic_config(str(tmp_path), windows).validate()


def _ml_sample(shared_data, tmp_path, rows: int = 6000):
    """The first ``rows`` ratings of ml-100k (not in time order) and {(user, item): timestamp}."""
    lines = (shared_data / "ml-100k" / "u.data").read_text().splitlines()[:rows]
    path = tmp_path / "u.data"
    path.write_text("\n".join(lines) + "\n")
    times = {(f[0], f[1]): float(f[3]) for f in (ln.split("\t") for ln in lines)}
    assert len(times) == rows  # one rating per (user, item)
    return path, times


def _times(spec, pattern: str, times: dict, key=("user_id", "item_id")) -> list[float]:
    from recsys.compat import tf

    out = []
    for raw in _records(spec, pattern):
        f = tf.train.Example.FromString(raw).features.feature
        out.append(times[tuple(f[k].bytes_list.value[0].decode() for k in key)])
    return out


def test_movielens_windows_by_timestamp(shared_data, tmp_path):
    data, times = _ml_sample(shared_data, tmp_path)
    out = str(tmp_path / "prep")
    run_pipeline(PreprocessConfig(source="movielens", output=out, schema=movielens_schema(),
                                  inputs=(str(data),), movielens_dir=str(shared_data / "ml-100k"),
                                  windows=3, columnar_chunk_rows=0))
    spec = feature_spec.load(out)
    got = [_times(spec, w.train_pattern, times) for w in spec.windows]
    evals = _times(spec, spec.data.eval_pattern, times)
    assert sorted(sum(got, []) + evals) == sorted(times.values())  # every row once
    for i, w in enumerate(spec.windows):
        assert (w.index, w.order, w.rows, w.first, w.last) == (i, "timestamp", len(got[i]), min(got[i]),
                                                               max(got[i]))
        assert abs(w.rows - spec.counts.written_train / 3) < 0.02 * spec.counts.written_train
    assert max(got[0]) < min(got[1]) and max(got[1]) < min(got[2]) and max(got[2]) < min(evals)
    assert sum(w.rows for w in spec.windows) == spec.counts.written_train
    assert spec.counts.written_eval == len(evals) == pytest.approx(600, abs=12)
    threshold = spec.split.time_threshold
    assert spec.split.method == "time" and spec.split.key == ("timestamp",) and min(evals) >= threshold
    assert spec.eval_window == feature_spec.Span(len(evals), "timestamp", min(evals), max(evals))
    assert spec.data.columnar_pattern == "" and spec.windows[0].columnar_pattern == ""


TIMED_SCHEMA = """
name: timed
delimiter: ","
columns:
  - {name: id, kind: categorical}
  - {name: x, kind: numeric}
  - {name: day, kind: ignored}
  - {name: y, kind: label}
label: {column: y, rule: binary}
split: {time_column: day, eval_fraction: 0.2}
"""


def test_schema_time_column_and_ties_go_to_the_later_window(tmp_path):
    """A schema's time column orders the rows (the file is not in time order); ten rows share each day,
    and a window boundary never splits a day."""
    (tmp_path / "timed.yaml").write_text(TIMED_SCHEMA)
    order = [(i * 37) % 400 for i in range(400)]
    (tmp_path / "t.csv").write_text("".join(f"r{i},{i % 5},{i // 10},{i % 2}\n" for i in order))
    out = str(tmp_path / "prep")
    run_pipeline(PreprocessConfig(source="csv", output=out, schema=csv_schema(str(tmp_path / "timed.yaml")),
                                  inputs=(str(tmp_path / "t.csv"),), windows=4, columnar_chunk_rows=0))
    spec = feature_spec.load(out)
    days = {(f"r{i}",): float(i // 10) for i in range(400)}
    got = [_times(spec, w.train_pattern, days, key=("id",)) for w in spec.windows]
    evals = _times(spec, spec.data.eval_pattern, days, key=("id",))
    assert [w.order for w in spec.windows] == ["time_column:day"] * 4
    for a, b in zip(got, [*got[1:], evals], strict=True):
        assert max(a) < min(b)  # whole days: no day is split between two windows
    assert [len(set(g)) for g in got] == [8, 8, 8, 8] and sorted(set(evals)) == list(range(32, 40))
    assert spec.split.key == ("day",) and 31 < spec.split.time_threshold <= 32


def test_a_time_on_a_boundary_belongs_to_the_later_window():
    cuts = windows.Cuts(threshold=9.0, bounds=(3.0, 6.0))
    assert cuts.window(np.array([2.9, 3.0, 5.9, 6.0, 8.9])).tolist() == [0, 1, 1, 2, 2]


def test_row_order_positions_are_byte_offsets_in_the_inputs_laid_end_to_end():
    from pipelines.chunks import Chunk, plan_chunks

    chunks = plan_chunks([("a.tsv", 3000), ("b.tsv.gz", 500), ("c.tsv", 1500)], 2048, header=False)
    assert [(c.path, c.start, c.base, c.size, c.total) for c in chunks] == [
        ("a.tsv", 0, 0, 3000, 5000), ("a.tsv", 2048, 0, 3000, 5000), ("b.tsv.gz", 0, 3000, 500, 5000),
        ("c.tsv", 0, 3500, 1500, 5000)]
    # The second chunk of a.tsv starts reading at byte 2050 (the line in progress at 2048 is the first's).
    got = windows.positions(chunks[1], 2050, [b"ab", b"cde", b""], synthetic=False)
    np.testing.assert_allclose(got, np.array([2050, 2053, 2057]) / 5000)
    # A compressed file: decompressed offsets (0, 300 of 600 bytes) scaled to its 500 bytes on disk.
    got = windows.positions(chunks[2], 0, [b"x" * 299, b"y" * 299], synthetic=False)
    np.testing.assert_allclose(got, np.array([3000, 3250]) / 5000)
    synthetic = Chunk(1, "synthetic", 1000, 2000, size=4000, total=4000)
    np.testing.assert_allclose(windows.positions(synthetic, 1000, [b""] * 3, synthetic=True),
                               [0.25, 1001 / 4000, 1002 / 4000])
