"""Query rows from a preprocessed split: every feature by name, in the JSON a client sends, round-tripping
through the client's row reader to the same raw values."""

from __future__ import annotations

import json

import pytest

from pipelines import feature_spec
from pipelines.config import PreprocessConfig
from pipelines.pipeline import run as run_pipeline
from pipelines.sources.csv import csv_schema
from recsys.data.rows import iter_rows, write_rows
from serving.tools.client import read_rows

HEADER = "user,country,price,age,tags,comment,outcome"
LINES = [f"u{i % 13},{'' if i % 5 == 0 else f'c{i % 3}'},{'' if i % 4 == 0 else i / 2},{20 + i},"
         f"{['a;b', '', 'c'][i % 3]},note {i},{['click', 'view'][i % 2]}" for i in range(200)]


@pytest.fixture(scope="module")
def spec(tmp_path_factory, repo_root) -> feature_spec.FeatureSpec:
    root = tmp_path_factory.mktemp("rows")
    (root / "toy.csv").write_text("\n".join([HEADER, *LINES]) + "\n", encoding="utf-8")
    schema = csv_schema(str(repo_root / "configs/schemas/toy.yaml"), eval_fraction=0.3)
    run_pipeline(PreprocessConfig(source="csv", output=str(root / "prep"), schema=schema,
                                  inputs=(str(root / "toy.csv"),)))
    return feature_spec.load(str(root / "prep"))


def test_rows_hold_every_feature_as_a_client_sends_it(spec, tmp_path):
    rows = list(iter_rows(spec, "eval", count=40, label=True))
    assert len(rows) == 40
    names = [f.name for f in spec.features]
    assert all(list(r) == [*names, "label"] for r in rows)
    for r in rows:  # raw values, as in the input line they came from (age = 20 + line index)
        i = int(r["age"]) - 20
        assert (r["user"], r["country"], r["tags"]) == (f"u{i % 13}", "" if i % 5 == 0 else f"c{i % 3}",
                                                        ["a;b", "", "c"][i % 3])
        assert r["price"] == (None if i % 4 == 0 else i / 2)
    assert any(r["price"] is None for r in rows)  # a missing numeric value is null, not NaN
    assert {r["tags"] for r in rows} <= {"a;b", "", "c"}  # multi-valued: the values joined again
    assert {r["label"] for r in rows} <= {0.0, 1.0}
    path = str(tmp_path / "rows.jsonl")
    assert write_rows(path, iter(rows)) == 40
    assert list(read_rows(path)) == rows  # what `recsys query --rows` reads back
    with open(path, encoding="utf-8") as fh:
        assert all(json.loads(line) for line in fh)


def test_skip_and_count_select_a_window(spec):
    every = list(iter_rows(spec, "train", count=30))
    assert list(iter_rows(spec, "train", count=5, skip=10)) == every[10:15]
    total = spec.counts.written_train
    assert len(list(iter_rows(spec, "train", count=total + 50))) == total  # no more than there are
    with pytest.raises(ValueError, match="count must be >= 1"):
        next(iter_rows(spec, "train", count=0))
