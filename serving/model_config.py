"""The model config file: TF Serving's ModelServerConfig text proto, parsed by protobuf's text_format."""

from __future__ import annotations

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2


def parse_config(text: str) -> list[model_server_config_pb2.ModelConfig]:
    """A ModelServerConfig text proto (``model_config_list { config { ... } }``) -> its model configs."""
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError("only model_config_list is supported in the model config file")
    configs = list(config.model_config_list.config)
    names = [c.name for c in configs]
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"model names must be unique and non-empty: {names}")
    for c in configs:
        if c.model_platform not in ("", "tensorflow"):
            raise ValueError(f"model {c.name}: unsupported platform {c.model_platform!r}")
    return configs


def single_model_config(name: str, base_path: str) -> model_server_config_pb2.ModelConfig:
    """``--model_name``/``--model_base_path`` as one ModelConfig."""
    return model_server_config_pb2.ModelConfig(name=name, base_path=base_path, model_platform="tensorflow")
