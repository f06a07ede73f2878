"""The model config file (``models.config``): TF Serving's ModelServerConfig text proto.

The one module that reads and writes it: protobuf's ``text_format`` both ways, never hand-built text.
A rewrite is atomic (``pipelines.atomic``), keeps the file's leading comment lines when asked, and
keeps its permission bits, so a server polling the file sees the old config or the new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from pipelines import atomic

# What a models.config holds: its model configs, or the whole ModelServerConfig.
Models: TypeAlias = Iterable[model_server_config_pb2.ModelConfig] | model_server_config_pb2.ModelServerConfig


def parse_server_config(text: str) -> model_server_config_pb2.ModelServerConfig:
    """A ModelServerConfig text proto, checked: a model_config_list of uniquely named TensorFlow models."""
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError("only model_config_list is supported in the model config file")
    names = [c.name for c in config.model_config_list.config]
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"model names must be unique and non-empty: {names}")
    for c in config.model_config_list.config:
        if c.model_platform not in ("", "tensorflow"):
            raise ValueError(f"model {c.name}: unsupported platform {c.model_platform!r}")
    return config


def parse_config(text: str) -> list[model_server_config_pb2.ModelConfig]:
    """A ModelServerConfig text proto (``model_config_list { config { ... } }``) -> its model configs."""
    return list(parse_server_config(text).model_config_list.config)


def read_config(path: str) -> list[model_server_config_pb2.ModelConfig]:
    """The model configs of a models.config file."""
    with open(path, encoding="utf-8") as fh:
        return parse_config(fh.read())


def leading_comments(text: str) -> str:
    """The comment (and blank) lines before the first statement: what a rewrite keeps on top."""
    header = []
    for line in text.splitlines(keepends=True):
        if line.strip() and not line.lstrip().startswith("#"):
            break
        header.append(line)
    return "".join(header)


def single_model_config(name: str, base_path: str, *,
                        all_versions: bool = False) -> model_server_config_pb2.ModelConfig:
    """One TensorFlow model (``--model_name``/``--model_base_path``); ``all_versions`` serves every
    version under ``base_path`` (the default policy serves the latest)."""
    config = model_server_config_pb2.ModelConfig(name=name, base_path=base_path, model_platform="tensorflow")
    if all_versions:
        config.model_version_policy.all.SetInParent()
    return config


def format_config(models: Models, header: str = "") -> str:
    """The text of a models.config: ``header`` (comment lines) then the ModelServerConfig text proto."""
    if isinstance(models, model_server_config_pb2.ModelServerConfig):
        config = models
    else:
        config = model_server_config_pb2.ModelServerConfig()
        config.model_config_list.config.extend(models)
    text = text_format.MessageToString(config)
    parse_server_config(text)  # never write a file the server would refuse
    if header and not header.endswith("\n"):
        header += "\n"
    return header + text


def write_config(path: str, models: Models, header: str = "") -> str:
    """Write (or atomically replace) a models.config; an existing file keeps its permission bits."""
    return atomic.write_text(path, format_config(models, header))
