"""Configs: named experiments, YAML typing, --set overrides, clear errors, saved resolved config."""

from __future__ import annotations

import pytest

from recsys import config as cfg


@pytest.mark.parametrize("name", ["synthetic_small", "criteo_dcn", "movielens_dcn"])
def test_named_experiments_load(name):
    exp = cfg.load(name)
    assert exp.name == name
    assert exp.model.interaction in ("cross", "dot")
    assert exp.data.spec_dir


def test_overrides_are_yaml_typed():
    exp = cfg.load(
        "synthetic_small",
        [
            "model.activation=smelu(beta=0.5)",
            "train.steps=200",
            "model.top_mlp=[8, 4]",
            "train.learning_rate=1",
            "model.embedding_dims={C1: 32}",
            "determinism.op_determinism=true",
        ],
    )
    assert exp.model.activation == "smelu(beta=0.5)"
    assert exp.train.steps == 200
    assert exp.model.top_mlp == (8, 4)
    assert exp.train.learning_rate == 1.0 and isinstance(exp.train.learning_rate, float)
    assert exp.model.embedding_dims == {"C1": 32}
    assert exp.determinism.op_determinism is True


def test_activation_can_be_a_mapping_and_towers_fall_back():
    exp = cfg.load(None, ["model.activation={name: smelu, beta: 0.5}", "model.top_activation=relu"])
    assert exp.model.tower_activation("bottom") == {"name": "smelu", "beta": 0.5}
    assert exp.model.tower_activation("top") == "relu"


def test_unknown_key_lists_valid_keys():
    with pytest.raises(cfg.ConfigError, match=r"unknown config key 'model.activaton'.*model\.activation"):
        cfg.load(None, ["model.activaton=relu"])


def test_unknown_key_in_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  stpes: 3\n")
    with pytest.raises(cfg.ConfigError, match=r"\['train.stpes'\].*train\.steps"):
        cfg.load(str(path))


def test_wrong_type_is_an_error():
    with pytest.raises(cfg.ConfigError, match="train.steps: expected int"):
        cfg.load(None, ["train.steps=many"])
    with pytest.raises(cfg.ConfigError, match="not of the form key=value"):
        cfg.load(None, ["train.steps"])


def test_missing_config_file_and_unknown_name():
    with pytest.raises(FileNotFoundError, match="config file not found"):
        cfg.load("/nonexistent/x.yaml")
    with pytest.raises(FileNotFoundError, match="named experiments: .*synthetic_small"):
        cfg.load("no_such_experiment")


def test_save_and_reload_round_trip(tmp_path):
    exp = cfg.load("criteo_dcn", ["model.activation={name: smelu, beta: 0.25}"])
    path = cfg.save(exp, tmp_path)
    assert cfg.load(path) == exp
