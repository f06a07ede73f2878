"""The one loader (pipelines/typed.py): experiments, feature specs and schemas to and from plain mappings."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pipelines import feature_spec, typed
from pipelines.schema import Schema, SchemaError, load_schema, schema_from_dict
from recsys import config as cfg
from recsys.config import loading

SPEC = {
    "dataset": "toy",
    "label": {"name": "label", "rule": "y (0/1)"},
    "features": [
        {"name": "price", "kind": "numeric", "dtype": "float32", "default": 1,
         "transform": {"clip_min": 0, "log1p": True}, "stats": {"mean": 0.5, "variance": 2, "count": 9}},
        {"name": "user", "kind": "categorical", "dtype": "string", "encoding": "vocabulary",
         "vocabulary_file": "vocab/user.txt", "vocabulary_size": 8},
        {"name": "tags", "kind": "multi_categorical", "dtype": "string", "encoding": "hash",
         "hash_buckets": 16, "separator": ";", "max_values": 3},
    ],
    "split": {"method": "hash", "key": ["user"], "eval_fraction": 0.25},
    "counts": {"read": 10, "written_train": 7, "written_eval": 2, "dead_lettered": 1},
}


def test_experiment_round_trips():
    exp = cfg.load("criteo_dcn", ["model.embedding_dims={C1: 32}",
                                  "model.activation={name: smelu, beta: 0.5}"])
    assert typed.from_dict(cfg.Experiment, typed.to_dict(exp)) == exp
    assert loading.from_dict(loading.to_dict(exp)) == exp


def test_feature_spec_round_trips_and_types_its_values(tmp_path):
    spec = feature_spec.FeatureSpec.from_dict(SPEC, root=str(tmp_path))
    price = spec.feature("price")
    assert price.default == 1.0 and isinstance(price.default, float)  # ints are accepted as floats
    assert price.transform == feature_spec.NumericTransform(clip_min=0.0, log1p=True)
    assert spec.split.key == ("user",) and spec.feature("tags").num_ids == 16
    assert spec.feature("user").num_ids == 9  # 8 + 1 OOV bucket: a default filled in
    assert "root" not in spec.to_dict()
    spec.save(str(tmp_path))
    again = feature_spec.load(str(tmp_path))
    assert again == spec and again.root == str(tmp_path)


def test_feature_spec_of_an_older_writer_loads_with_defaults(tmp_path):
    """A spec written before some fields existed (no data/counts/split, no max_values, ...) still loads."""
    old = {"dataset": "old", "label": {"name": "label"},
           "features": [{"name": "C1", "kind": "categorical", "dtype": "string", "encoding": "hash",
                         "hash_buckets": 4}]}
    (tmp_path / feature_spec.SPEC_FILENAME).write_text(json.dumps(old))
    spec = feature_spec.load(str(tmp_path))
    assert spec.data == feature_spec.DataFiles() and spec.counts.read == 0
    assert spec.feature("C1").max_values == 0 and spec.format_version == feature_spec.FORMAT_VERSION


@pytest.mark.parametrize("patch, message", [
    ({"dataset": "x", "label": {}, "features": [{"name": "a", "kind": "numeric", "dtype": "float32",
                                                  "colour": 1}]},
     r"unknown feature spec key\(s\) \['features\[0\]\.colour'\]; (did you mean .*)?valid keys: "
     r".*features\[0\]\.kind"),
    ({"dataset": "x", "label": {}, "features": [{"name": "a", "kind": "text", "dtype": "string"}]},
     r"features\[0\]\.kind must be one of \['numeric', 'categorical', 'multi_categorical'\], got 'text'"),
    ({"label": {}, "features": []}, r"missing required key\(s\) \['dataset'\]"),
    ({"dataset": "x", "label": {}, "features": [], "counts": {"read": "many"}},
     r"counts\.read: expected int, got 'many'"),
])
def test_malformed_feature_spec_names_the_key(tmp_path, patch, message):
    (tmp_path / feature_spec.SPEC_FILENAME).write_text(json.dumps(patch))
    with pytest.raises(ValueError, match="is malformed: (feature spec: )?" + message):
        feature_spec.load(str(tmp_path))


def test_schema_round_trips(repo_root):
    for name in ("toy", "movielens_udata", "criteo_csv_header"):
        schema = load_schema(str(repo_root / "configs" / "schemas" / f"{name}.yaml"))
        assert schema_from_dict(typed.to_dict(schema)) == schema
        assert typed.from_dict(Schema, json.loads(json.dumps(typed.to_dict(schema)))) == schema


def test_schema_shorthands_and_number_values_still_parse():
    schema = schema_from_dict({
        "delimiter": "tab",
        "columns": ["user", {"name": "rating", "kind": "label"}, {"name": 7, "kind": "numeric",
                                                                    "clip_min": "0", "default": 3}],
        "label": {"column": "rating", "positive_values": [4, 5]},
        "split": {"key": "user"},
    }, name="from_file")
    assert schema.name == "from_file" and schema.delimiter == "\t"
    assert schema.column("user").kind == "categorical"
    assert schema.column("7").clip_min == 0.0 and schema.column("7").default == 3.0
    assert schema.label.positive_values == ("4", "5") and schema.label.compile()("5") == 1.0
    assert schema.split.key == ("user",)
    assert schema_from_dict({"delimiter": "\\t", "columns": ["a", {"name": "y", "kind": "label"}],
                             "label": "y"}).delimiter == "\t"


def test_schema_errors_are_schema_errors_with_the_key():
    with pytest.raises(SchemaError, match=r"columns\[0\]\.log1p: expected true/false, got 'maybe'"):
        schema_from_dict({"columns": [{"name": "a", "kind": "numeric", "log1p": "maybe"},
                                      {"name": "y", "kind": "label"}], "label": "y"})
    with pytest.raises(SchemaError, match=r"unknown schema key\(s\) \['split\.methd'\]; did you mean "
                                          r"split\.method\? valid keys: .*split\.method"):
        schema_from_dict({"columns": ["a", {"name": "y", "kind": "label"}], "label": "y",
                          "split": {"methd": "time"}})


def test_strict_loader_refuses_what_the_lenient_one_converts():
    @dataclasses.dataclass(frozen=True)
    class Point:
        x: float = 0.0
        tag: str = ""

    assert typed.from_dict(Point, {"x": "1.5", "tag": 3}, lenient=True) == Point(1.5, "3")
    with pytest.raises(typed.TypedError, match="x: expected a number, got '1.5'"):
        typed.from_dict(Point, {"x": "1.5"})
    with pytest.raises(typed.TypedError, match="tag: expected str, got 3"):
        typed.from_dict(Point, {"tag": 3})


def test_range_check_of_a_nested_dataclass_names_the_dotted_key():
    with pytest.raises(cfg.ConfigError, match=r"^train\.steps must be >= 1, got 0$"):
        loading.from_dict({"train": {"steps": 0}})


def test_a_file_holds_the_experiment_and_command_sections(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("train: {steps: 7}\nserve: {port: 9001}\nstudy: {replicas: 3}\n")
    assert cfg.load(str(path)).train.steps == 7  # the sections are not the experiment's
    (tmp_path / "typo.yaml").write_text("train: {steps: 7}\nserv: {port: 9001}\n")
    with pytest.raises(cfg.ConfigError, match=r"unknown config key\(s\) \['serv'\].*valid top-level keys: "
                                              r".*model.*serve"):
        cfg.load(str(tmp_path / "typo.yaml"))
    with pytest.raises(cfg.ConfigError, match="this command has no 'serve' section"):
        loading.split_overrides(["train.steps=3", "serve.port=1"], ())
    assert loading.split_overrides(["train.steps=3", "serve.port=1"], ("serve",)) == (
        ["train.steps=3"], ["serve.port=1"])


def test_the_config_refuses_a_bad_distillation_weight():
    for sets, match in ((["train.distill_weight=1.5", "train.distill_from=x"], r"in \[0, 1\], got 1\.5"),
                        (["train.distill_weight=-0.1", "train.distill_from=x"], r"in \[0, 1\]"),
                        (["train.distill_weight=0.5"], "distillation needs a parent"),
                        (["train.warm_start_optimizer=true"], "false when warm_start_from is empty")):
        with pytest.raises(ValueError, match=match):
            cfg.load("synthetic_small", sets)
