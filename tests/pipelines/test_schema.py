"""Schema files: what they accept, and the errors people see for what they do not."""

from __future__ import annotations

import pytest

from pipelines.schema import COLUMN_KINDS, SchemaError, load_schema, schema_from_dict


def _schema(**over):
    d = {
        "delimiter": ",",
        "columns": [{"name": "a", "kind": "categorical"}, {"name": "y", "kind": "label"}],
        "label": {"column": "y"},
    }
    d.update(over)
    return d


def test_repo_schemas_load(repo_root):
    toy = load_schema(str(repo_root / "configs" / "schemas" / "toy.yaml"))
    assert toy.header and toy.delimiter == ","
    assert [c.name for c in toy.features] == ["user", "country", "price", "age", "tags"]
    assert toy.column("tags").separator == ";"
    assert toy.split.key == ("user",) and toy.split.eval_fraction == 0.25
    ml = load_schema(str(repo_root / "configs" / "schemas" / "movielens_udata.yaml"))
    assert ml.delimiter == "\t" and ml.label.rule == ">= 4"
    crit = load_schema(str(repo_root / "configs" / "schemas" / "criteo_csv_header.yaml"))
    assert len(crit.features) == 39


def test_unknown_kind_lists_the_valid_kinds():
    with pytest.raises(SchemaError) as err:
        schema_from_dict(_schema(columns=[{"name": "a", "kind": "text"}, {"name": "y", "kind": "label"}]))
    for kind in COLUMN_KINDS:
        assert kind in str(err.value)


@pytest.mark.parametrize(
    "over, message",
    [
        ({"label": {"column": "nope"}}, "label column 'nope'"),
        (
            {"columns": [{"name": "a", "kind": "multi_categorical"}, {"name": "y", "kind": "label"}]},
            "needs a separator",
        ),
        ({"label": {"column": "y", "rule": "about 4"}}, "not understood"),
        ({"split": {"key": ["zz"]}}, "split key column 'zz'"),
        ({"split": {"method": "time", "time_column": "zz"}}, "time_column 'zz'"),
        ({"split": {"eval_fraction": 1.5}}, "eval_fraction"),
        ({"colums": []}, r"unknown schema key\(s\) \[.colums.\]; did you mean columns\? valid keys: "
                         r".*columns"),
        (
            {
                "columns": [{"name": "a", "kind": "categorical"}, {"name": "a", "kind": "label"}],
                "label": {"column": "a"},
            },
            "duplicate",
        ),
    ],
)
def test_schema_errors(over, message):
    with pytest.raises(SchemaError, match=message):
        schema_from_dict(_schema(**over))


def test_missing_schema_file(tmp_path):
    with pytest.raises(SchemaError, match="not found"):
        load_schema(str(tmp_path / "absent.yaml"))


@pytest.mark.parametrize(
    "label, raw, expected",
    [
        ({"column": "y"}, "1", 1.0),
        ({"column": "y"}, "0", 0.0),
        ({"column": "y", "rule": ">= 4"}, "4", 1.0),
        ({"column": "y", "rule": ">= 4"}, "3.5", 0.0),
        ({"column": "y", "rule": "< 2"}, "1", 1.0),
        ({"column": "y", "positive_values": ["buy", "click"]}, "click", 1.0),
        ({"column": "y", "positive_values": ["buy", "click"]}, "view", 0.0),
    ],
)
def test_label_rules(label, raw, expected):
    rule = schema_from_dict(_schema(label=label)).label.compile()
    assert rule(raw) == expected


def test_binary_label_rejects_other_values():
    rule = schema_from_dict(_schema()).label.compile()
    with pytest.raises(ValueError):
        rule("2")
    with pytest.raises(ValueError):
        rule("yes")


def test_the_documented_schema_example_is_the_shipped_toy_schema(repo_root):
    """docs/preprocess.md shows configs/schemas/toy.yaml: a reader who copies it gets the same columns."""
    import re

    import yaml

    doc = (repo_root / "docs" / "preprocess.md").read_text(encoding="utf-8")
    example = re.search(r"Example \(`configs/schemas/toy.yaml`\):\n\n```yaml\n(.*?)```", doc, re.S)
    assert example is not None
    shown = yaml.safe_load(example.group(1))
    shipped = yaml.safe_load((repo_root / "configs" / "schemas" / "toy.yaml").read_text(encoding="utf-8"))
    assert shown["columns"] == shipped["columns"]
    assert {k: v for k, v in shown["label"].items() if k != "name"} == shipped["label"]
    assert shown["split"] == shipped["split"]
