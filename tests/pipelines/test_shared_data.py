"""Real Criteo and MovieLens rows from ../shared/data (skipped when absent; never copied here)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from pipelines import feature_spec
from pipelines.config import PreprocessConfig
from pipelines.sources.criteo import criteo_schema
from pipelines.sources.csv import csv_schema
from pipelines.sources.movielens import GENRES, movielens_schema


def _canon_raw(fields: list[str]):
    return (
        float(fields[0]),
        tuple(float(np.float32(float(v))) if v else None for v in fields[1:14]),
        tuple(v if v else None for v in fields[14:40]),
    )


def _canon_ex(ex):
    return (
        ex["label"][0],
        tuple(ex[f"I{j}"][0] if f"I{j}" in ex else None for j in range(1, 14)),
        tuple(ex[f"C{j}"][0] if f"C{j}" in ex else None for j in range(1, 27)),
    )


def test_criteo_kaggle_rows(shared_data, tmp_path, run_config, read_examples, read_errors):
    path = shared_data / "criteo" / "kaggle_train_head8000.txt"
    raw_lines = path.read_text(encoding="utf-8").splitlines()
    out = tmp_path / "out"
    run_config(
        PreprocessConfig(
            source="criteo", output=str(out), schema=criteo_schema(), inputs=(str(path),), min_frequency=3
        )
    )
    spec = feature_spec.load(str(out))
    assert spec.counts.read == len(raw_lines) == 8000
    assert spec.counts.dead_lettered == 0 and read_errors(out) == []
    examples = read_examples(out, "train") + read_examples(out, "eval")
    assert Counter(map(_canon_ex, examples)) == Counter(_canon_raw(ln.split("\t")) for ln in raw_lines)
    # I2 has negative values: stored raw, clipped to 0 before log1p in the stats.
    raw_i2 = min(int(ln.split("\t")[2]) for ln in raw_lines if ln.split("\t")[2])
    assert raw_i2 < 0
    assert min(e["I2"][0] for e in examples if "I2" in e) == raw_i2
    assert spec.feature("I2").stats.min == 0.0
    train = read_examples(out, "train")
    c1 = Counter(e["C1"][0] for e in train if "C1" in e)
    vocab = (out / spec.feature("C1").vocabulary_file).read_text().splitlines()
    assert vocab == [v for v, n in sorted(c1.items(), key=lambda kv: (-kv[1], kv[0])) if n >= 3]


def test_criteo_csv_with_header_via_schema(shared_data, repo_root, tmp_path, run_config, read_examples):
    path = shared_data / "criteo" / "deepctr_criteo_sample.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    out = tmp_path / "out"
    schema = csv_schema(str(repo_root / "configs/schemas/criteo_csv_header.yaml"))
    run_config(PreprocessConfig(source="csv", output=str(out), schema=schema, inputs=(str(path),)))
    spec = feature_spec.load(str(out))
    assert spec.counts.read == len(lines) - 1 == 200 and spec.counts.dead_lettered == 0
    examples = read_examples(out, "train") + read_examples(out, "eval")
    assert Counter(map(_canon_ex, examples)) == Counter(_canon_raw(ln.split(",")) for ln in lines[1:])


def test_movielens_100k_join(shared_data, tmp_path, run_config, read_examples):
    ml = shared_data / "ml-100k"
    out = tmp_path / "out"
    cfg = PreprocessConfig(
        source="movielens",
        output=str(out),
        schema=movielens_schema(),
        inputs=(str(ml / "u.data"),),
        movielens_dir=str(ml),
    )
    run_config(cfg)
    spec = feature_spec.load(str(out))
    ratings = [ln.split("\t") for ln in (ml / "u.data").read_text().splitlines()]
    users = {f[0]: f for f in (ln.split("|") for ln in (ml / "u.user").read_text().splitlines())}
    items = {
        f[0]: f for f in (ln.split("|") for ln in (ml / "u.item").read_text(encoding="latin-1").splitlines())
    }
    c = spec.counts
    assert (c.read, c.dead_lettered) == (100_000, 0)
    assert [f.name for f in spec.features] == [
        "user_id",
        "item_id",
        "age",
        "gender",
        "occupation",
        "zip_code",
        "genres",
        "release_year",
    ]
    assert spec.feature("genres").kind == "multi_categorical"
    assert spec.feature("genres").separator == "|"

    eval_ex = read_examples(out, "eval")
    assert len(eval_ex) == c.written_eval
    eval_users = {e["user_id"][0] for e in eval_ex}
    train_rows = [r for r in ratings if r[0] not in eval_users]
    assert len(train_rows) == c.written_train  # split by user_id: no user on both sides
    assert sum(e["label"][0] for e in eval_ex) == sum(int(r[2]) >= 4 for r in ratings if r[0] in eval_users)

    def genres(item):
        return [g for g, on in zip(GENRES, items[item][5:], strict=True) if on == "1"]

    want = Counter(g for r in train_rows for g in genres(r[1]))
    vocab = (out / "vocab/genres.txt").read_text().splitlines()
    assert vocab == [g for g, _ in sorted(want.items(), key=lambda kv: (-kv[1], kv[0]))]
    assert spec.feature("genres").max_values == max(len(genres(r[1])) for r in train_rows)
    assert spec.feature("user_id").vocabulary_size == len({r[0] for r in train_rows})
    ages = np.array([float(users[r[0]][1]) for r in train_rows])
    assert spec.feature("age").stats.mean == pytest.approx(ages.mean(), rel=1e-9)
    assert spec.feature("age").stats.variance == pytest.approx(ages.var(), rel=1e-9)
    # One record compared field by field with its joined raw row.
    ex = eval_ex[0]
    match = [r for r in ratings if r[0] == ex["user_id"][0] and r[1] == ex["item_id"][0]]
    assert len(match) == 1
    u, it = users[match[0][0]], items[match[0][1]]
    assert ex["label"] == [1.0 if int(match[0][2]) >= 4 else 0.0]
    assert ex["age"] == [float(u[1])] and ex["gender"] == [u[2]]
    assert ex["occupation"] == [u[3]] and ex["zip_code"] == [u[4]]
    assert ex["genres"] == genres(match[0][1])
    year = it[2].rsplit("-", 1)[-1]
    assert ex.get("release_year") == ([float(year)] if year else None)


def test_movielens_unknown_user_is_dead_lettered(shared_data, tmp_path, run_config, read_errors):
    ml = shared_data / "ml-100k"
    data = tmp_path / "u.data"
    data.write_text("196\t242\t3\t881250949\n99999\t242\t5\t881250949\n186\t99999\t4\t1\n")
    out = tmp_path / "out"
    cfg = PreprocessConfig(
        source="movielens",
        output=str(out),
        schema=movielens_schema(),
        inputs=(str(data),),
        movielens_dir=str(ml),
        max_error_fraction=1.0,
    )
    run_config(cfg)
    assert feature_spec.load(str(out)).counts.dead_lettered == 2
    assert [(e["line"], e["code"]) for e in read_errors(out)] == [(2, "join_user"), (3, "join_item")]
