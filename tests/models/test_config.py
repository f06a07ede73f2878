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


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.interaction=dcn", "model.interaction must be one of ['cross', 'dot'], got 'dcn'"),
        ("train.optimizer=adamw", "train.optimizer must be one of ['adam', 'adagrad', 'sgd'], got 'adamw'"),
        ("determinism.collective=ring", "determinism.collective must be one of ['AUTO', 'RING', 'NCCL']"),
        ("data.sharding=row", "data.sharding must be one of ['global_batch', 'file'], got 'row'"),
        ("train.learning_rate=0", "train.learning_rate must be > 0, got 0.0"),
        ("train.backup_every_steps=-1", "train.backup_every_steps must be >= 0, got -1"),
        ("data.batch_size=0", "data.batch_size must be >= 1, got 0"),
        ("model.top_mlp=[64,0]", "model.top_mlp must be a list of widths >= 1, got [64, 0]"),
    ],
)
def test_schema_checks_choices_and_ranges(override, message):
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load("synthetic_small", [override])
    assert message in str(err.value)


def test_named_experiments_are_registered_in_code_equal_to_their_yaml(repo_root):
    """The code registry (what an installed wheel has) and configs/*.yaml say the same thing."""
    import yaml

    from recsys.config.experiments import EXPERIMENTS

    files = sorted(p.stem for p in (repo_root / "configs").glob("*.yaml"))
    assert sorted(EXPERIMENTS) == files
    for name in files:
        from_yaml = yaml.safe_load((repo_root / "configs" / f"{name}.yaml").read_text())
        assert EXPERIMENTS[name] == from_yaml, name
        assert cfg.load(name) == cfg.load(str(repo_root / "configs" / f"{name}.yaml"))


def test_named_experiment_loads_without_the_source_tree(tmp_path, repo_root):
    """Installed without configs/ beside it (as from a wheel), the names still resolve."""
    import shutil
    import subprocess
    import sys

    site = tmp_path / "site" / "recsys"
    shutil.copytree(repo_root / "recsys" / "config", site / "config")
    shutil.copy(repo_root / "recsys" / "__init__.py", site / "__init__.py")
    code = "import recsys.config as c; print(c.load('criteo_dcn').model.cross_low_rank, c.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60, env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    cross_low_rank, where = out.stdout.split()
    assert cross_low_rank == "64" and where.startswith(str(tmp_path))
    assert not (tmp_path / "site" / "configs").exists()
