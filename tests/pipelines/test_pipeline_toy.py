"""The CSV source end to end on a tiny generated toy dataset described by configs/schemas/toy.yaml."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from pipelines import feature_spec
from pipelines.config import PreprocessConfig
from pipelines.sources.csv import csv_schema

HEADER = "user,country,price,age,tags,comment,outcome"
# Country counts 14/12/6/3/3/1/1: ties (3, 3) and (1, 1) are broken by value.
COUNTRIES = ["fr"] * 14 + ["de"] * 12 + ["it"] * 6 + ["es"] * 3 + ["at"] * 3 + ["pt", "nl"]
N = len(COUNTRIES)


def toy_rows() -> list[dict]:
    rows = []
    for i, country in enumerate(COUNTRIES):
        rows.append(
            {
                "user": f"u{i % 8}",
                "country": country,
                "price": "" if i % 10 == 0 else ("-2" if i == 3 else f"{i * 1.5:g}"),
                "age": str(20 + i),
                "tags": "a;b" if i % 2 == 0 else ("b" if i % 3 == 0 else ""),
                "comment": f"note {i}",
                "outcome": ["click", "buy", "view", "view"][i % 4],
            }
        )
    return rows


@pytest.fixture
def toy_csv(tmp_path):
    path = tmp_path / "toy.csv"
    lines = [HEADER] + [",".join(r.values()) for r in toy_rows()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _config(repo_root, toy_csv, out, eval_fraction=None, **kw) -> PreprocessConfig:
    schema = csv_schema(str(repo_root / "configs/schemas/toy.yaml"), eval_fraction=eval_fraction)
    return PreprocessConfig(source="csv", output=str(out), schema=schema, inputs=(str(toy_csv),), **kw)


def test_vocabularies_stats_and_spec(repo_root, toy_csv, tmp_path, run_config, read_examples):
    out = tmp_path / "out"
    cfg = _config(
        repo_root,
        toy_csv,
        out,
        eval_fraction=0.0,
        min_frequency=2,
        top_k=4,
        hash_threshold=7,
        hash_buckets=16,
        num_oov_buckets=2,
    )
    summary = run_config(cfg)
    spec = feature_spec.load(str(out))
    assert spec.counts == feature_spec.Counts(read=N, written_train=N, written_eval=0, dead_lettered=0)
    assert summary.stage_counts["1_lines_read"] == N
    assert [f.name for f in spec.features] == ["user", "country", "price", "age", "tags"]

    country = spec.feature("country")
    assert (country.kind, country.dtype, country.encoding) == ("categorical", "string", "vocabulary")
    # min_frequency=2 drops pt and nl; top_k=4 keeps fr, de, it and the tie winner "at" < "es".
    assert (out / "vocab/country.txt").read_text().splitlines() == ["fr", "de", "it", "at"]
    assert country.vocabulary_file == "vocab/country.txt"
    assert (country.vocabulary_size, country.num_oov_buckets, country.num_ids) == (4, 2, 6)
    assert country.cardinality == 7

    user = spec.feature("user")  # 8 distinct users > hash_threshold=7 -> hashed
    assert (user.encoding, user.hash_buckets, user.cardinality, user.num_ids) == ("hash", 16, 8, 16)
    assert user.vocabulary_file == ""

    tags = spec.feature("tags")
    n_a = sum(1 for r in toy_rows() if "a" in r["tags"].split(";"))
    n_b = sum(1 for r in toy_rows() if "b" in r["tags"].split(";"))
    assert n_b > n_a
    assert (out / "vocab/tags.txt").read_text().splitlines() == ["b", "a"]
    assert (tags.kind, tags.separator, tags.max_values, tags.vocabulary_size) == (
        "multi_categorical",
        ";",
        2,
        2,
    )

    price = spec.feature("price")
    raw = [float(r["price"]) for r in toy_rows() if r["price"]]
    t = np.log1p(np.maximum(raw, 0.0))
    assert price.transform == feature_spec.NumericTransform(clip_min=0.0, log1p=True)
    assert price.stats.count == len(raw) and price.stats.missing == N - len(raw)
    assert math.isclose(price.stats.mean, t.mean(), rel_tol=1e-12)
    assert math.isclose(price.stats.variance, t.var(), rel_tol=1e-12)
    assert (price.stats.min, price.stats.max) == (0.0, pytest.approx(t.max()))
    age = spec.feature("age")
    assert age.default == 30.0 and age.transform.clip_max == 100.0
    assert age.stats.mean == pytest.approx(np.mean([20 + i for i in range(N)]))

    assert spec.label.name == "label" and "click" in spec.label.rule
    assert spec.split.key == ("user",) and spec.split.salt == "toy"
    # The JSON on disk round-trips through the trainer's loader unchanged.
    with open(out / "feature_spec.json") as fh:
        assert feature_spec.FeatureSpec.from_dict(json.load(fh), root=str(out)) == spec

    # Every record read back equals its raw row (matched by the unique age).
    by_age = {r["age"]: r for r in toy_rows()}
    examples = read_examples(out, "train")
    assert len(examples) == N
    for ex in examples:
        row = by_age[str(int(ex["age"][0]))]
        assert ex["label"] == [1.0 if row["outcome"] in ("click", "buy") else 0.0]
        assert ex["user"] == [row["user"]] and ex["country"] == [row["country"]]
        assert ex.get("price") == ([float(row["price"])] if row["price"] else None)
        assert ex["tags"] == [t for t in row["tags"].split(";") if t]
        assert "comment" not in ex and "outcome" not in ex


def test_feature_with_no_frequent_value_becomes_all_oov(repo_root, toy_csv, tmp_path, run_config):
    out = tmp_path / "out"
    run_config(_config(repo_root, toy_csv, out, eval_fraction=0.0, min_frequency=100))
    country = feature_spec.load(str(out)).feature("country")
    # An empty vocabulary file cannot back a lookup table: every value goes to the OOV bucket.
    assert (country.encoding, country.hash_buckets, country.num_ids) == ("hash", 1, 1)
    assert country.cardinality == 7


def test_split_is_deterministic_and_keyed(repo_root, toy_csv, tmp_path, run_config, read_examples):
    sides = []
    for run in range(2):
        out = tmp_path / f"run{run}"
        run_config(_config(repo_root, toy_csv, out))
        spec = feature_spec.load(str(out))
        train = {int(e["age"][0]) for e in read_examples(out, "train")}
        evals = {int(e["age"][0]) for e in read_examples(out, "eval")}
        assert not train & evals and len(train | evals) == N
        assert spec.counts.written_eval == len(evals) > 0
        sides.append((train, evals))
        # split key = user: all rows of one user are on the same side
        users_eval = {toy_rows()[a - 20]["user"] for a in evals}
        users_train = {toy_rows()[a - 20]["user"] for a in train}
        assert not users_eval & users_train
    assert sides[0] == sides[1]


def test_time_split(repo_root, toy_csv, tmp_path, run_config, read_examples):
    schema = csv_schema(str(repo_root / "configs/schemas/toy.yaml"))
    schema = dataclasses.replace(
        schema,
        split=dataclasses.replace(schema.split, method="time", key=(), time_column="age", time_threshold=50),
    ).validate()
    out = tmp_path / "out"
    run_config(PreprocessConfig(source="csv", output=str(out), schema=schema, inputs=(str(toy_csv),)))
    evals = sorted(int(e["age"][0]) for e in read_examples(out, "eval"))
    assert evals == list(range(50, 20 + N))
    assert feature_spec.load(str(out)).split.method == "time"


def test_automatic_time_split_takes_the_latest_rows(repo_root, toy_csv, tmp_path, run_config, read_examples):
    schema = csv_schema(str(repo_root / "configs/schemas/toy.yaml"))
    schema = dataclasses.replace(
        schema,
        split=dataclasses.replace(schema.split, method="time", key=(), time_column="age", eval_fraction=0.25),
    ).validate()
    out = tmp_path / "out"
    run_config(PreprocessConfig(source="csv", output=str(out), schema=schema, inputs=(str(toy_csv),)))
    spec = feature_spec.load(str(out))
    ages = sorted(20 + i for i in range(N))
    threshold = spec.split.time_threshold
    assert ages[int(0.75 * N) - 1] <= threshold <= ages[int(0.75 * N) + 1]
    evals = sorted(int(e["age"][0]) for e in read_examples(out, "eval"))
    assert evals == [a for a in ages if a >= threshold]
    assert abs(len(evals) - 0.25 * N) <= 2


def test_header_mismatch_is_reported(repo_root, tmp_path, run_config):
    bad = tmp_path / "bad.csv"
    bad.write_text("user,country,price\nu1,fr,1\n")
    from pipelines.schema import SchemaError

    with pytest.raises(SchemaError, match="header of .*bad.csv does not match"):
        run_config(_config(repo_root, bad, tmp_path / "out"))
