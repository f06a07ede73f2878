"""Build an :class:`Experiment` from YAML files, named experiments and ``--set key=value`` overrides.

Values are checked against the dataclass field types, so a typo in a key or a wrong type fails early
with a message that lists the valid keys.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import pathlib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from recsys.config.experiments import EXPERIMENTS
from recsys.config.schema import Experiment

# The YAML copies of the named experiments in a source checkout (the code registry is canonical).
CONFIG_DIR = pathlib.Path(__file__).resolve().parents[2] / "configs"
RESOLVED_FILENAME = "config.yaml"


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


def valid_keys(cls: type = Experiment, prefix: str = "") -> list[str]:
    """All dotted keys of a config dataclass, e.g. ``model.activation``."""
    keys = []
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            keys += valid_keys(hint, f"{prefix}{f.name}.")
        else:
            keys.append(prefix + f.name)
    return keys


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against a type hint, converting lists to tuples and ints to floats."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _coerce(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} matches none of {hint}")
    if hint is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}: expected null, got {value!r}")
    if hint is Any:
        return value
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key} must be one of {list(choices)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item, _) = typing.get_args(hint)
        return tuple(_coerce(v, item, key) for v in value)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        kt, vt = typing.get_args(hint)
        return {_coerce(k, kt, key): _coerce(v, vt, key) for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}")
    return value


def from_dict(d: Mapping[str, Any], cls: type = Experiment, prefix: str = "") -> Any:
    """Build a config dataclass from a nested mapping; unknown keys raise :class:`ConfigError`."""
    if not isinstance(d, Mapping):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {d!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {[prefix + k for k in unknown]}; valid keys: "
            + ", ".join(valid_keys(cls, prefix))
        )
    kwargs = {}
    for name, value in d.items():
        hint = hints[name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(value or {}, hint, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, prefix + name)
    try:
        return cls(**kwargs)
    except ValueError as err:  # a range check of the schema (``__post_init__``)
        raise ConfigError(f"{prefix}{err}") from None


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML-friendly nested dict (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"model.activation=smelu(beta=0.5)"`` -> (["model", "activation"], "smelu(beta=0.5)")."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if key not in valid_keys():
        raise ConfigError(
            f"unknown config key {key!r} in --set {text!r}; valid keys: " + ", ".join(valid_keys())
        )
    value = yaml.safe_load(raw) if raw.strip() else ""
    return key.split("."), value


def _read(config: str) -> dict[str, Any]:
    """The mapping of a YAML file (a path), or of a named experiment (:mod:`recsys.config.experiments`)."""
    path = pathlib.Path(config)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise FileNotFoundError(f"config file not found: {path}")
        with open(path, encoding="utf-8") as fh:
            try:
                loaded = yaml.safe_load(fh) or {}
            except yaml.YAMLError as err:
                raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"config file {path} must hold a mapping, got {type(loaded).__name__}")
        loaded = dict(loaded)
        loaded.setdefault("name", path.stem)
        return loaded
    if config in EXPERIMENTS:
        return copy.deepcopy(EXPERIMENTS[config])
    raise FileNotFoundError(
        f"no config file {path} and no named experiment {config!r}; named experiments: {sorted(EXPERIMENTS)}"
    )


def config_text(config: str | os.PathLike) -> str:
    """The YAML text of a config file, or of a named experiment (for a ConfigMap)."""
    path = pathlib.Path(config)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path.read_text(encoding="utf-8")
    return yaml.safe_dump(_read(str(config)), sort_keys=False)


def load(
    config: str | os.PathLike | None = None,
    overrides: Iterable[str] = (),
    base: Mapping[str, Any] | None = None,
) -> Experiment:
    """Resolve an experiment: defaults <- ``base`` <- YAML file or named experiment <- ``--set``.

    A relative ``data.spec_dir`` in a YAML file is taken relative to the current directory.
    """
    d: dict[str, Any] = dict(base or {})
    if config:
        d = _merge(d, _read(str(config)))
    for text in overrides:
        keys, value = parse_override(text)
        patch: dict[str, Any] = {keys[-1]: value}
        for k in reversed(keys[:-1]):
            patch = {k: patch}
        d = _merge(d, patch)
    return from_dict(d)


def save(config: Experiment, directory: str | os.PathLike) -> str:
    """Write the resolved config as ``<directory>/config.yaml`` (atomically) and return its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, RESOLVED_FILENAME)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        yaml.safe_dump(to_dict(config), fh, sort_keys=False)
    os.replace(tmp, path)
    return path
