"""Configs: typed frozen dataclasses (the experiment; each command's settings in
:mod:`recsys.settings`), YAML files and named experiments, ``--set`` overrides."""

from recsys.config.loading import (
    CONFIG_DIR,
    ConfigError,
    from_dict,
    load,
    load_section,
    parse_override,
    save,
    to_dict,
    valid_keys,
)
from recsys.config.schema import (
    DataConfig,
    DeterminismConfig,
    Experiment,
    ExportConfig,
    ModelConfig,
    TrainConfig,
)

__all__ = [
    "CONFIG_DIR",
    "ConfigError",
    "DataConfig",
    "DeterminismConfig",
    "Experiment",
    "ExportConfig",
    "ModelConfig",
    "TrainConfig",
    "from_dict",
    "load",
    "load_section",
    "parse_override",
    "save",
    "to_dict",
    "valid_keys",
]
