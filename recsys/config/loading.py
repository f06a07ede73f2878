"""Build an :class:`Experiment` from YAML files, named experiments and ``--set key=value`` overrides.

Values are checked against the dataclass field types, so a typo in a key or a wrong type fails early
with a message that lists the valid keys.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import yaml

from pipelines import atomic, typed
from pipelines.typed import TypedError
from recsys.config.experiments import EXPERIMENTS
from recsys.config.schema import Experiment

# The YAML copies of the named experiments in a source checkout (the code registry is canonical).
CONFIG_DIR = pathlib.Path(__file__).resolve().parents[2] / "configs"
RESOLVED_FILENAME = "config.yaml"
T = TypeVar("T")


class ConfigError(TypedError):
    """A config file or override that does not fit the schema."""


# Per-command sections a config file may hold beside the experiment's keys (``serve: {port: 9000}``);
# :mod:`recsys.settings` has their dataclasses. The experiment ignores them.
SECTIONS = ("preprocess", "submit", "study", "serve", "monitor", "demo", "plan", "query", "activations",
            "rows", "compare", "promote", "reproduce")


def valid_keys(cls: type = Experiment, prefix: str = "") -> list[str]:
    """All dotted keys of a config dataclass, e.g. ``model.activation``."""
    return typed.valid_keys(cls, prefix)


def from_dict(d: Mapping[str, Any], cls: type[T] = Experiment, prefix: str = "") -> T:  # type: ignore[assignment]
    """Build a config dataclass from a nested mapping; unknown keys raise :class:`ConfigError`."""
    return typed.from_dict(cls, d, error=ConfigError, prefix=prefix)


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML-friendly nested dict (tuples become lists)."""
    return typed.to_dict(config)


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(text: str, keys: Iterable[str] | None = None) -> tuple[list[str], Any]:
    """``"model.activation=smelu(beta=0.5)"`` -> (["model", "activation"], "smelu(beta=0.5)").

    ``keys``: the dotted keys accepted (default: the experiment's).
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    valid = list(valid_keys() if keys is None else keys)
    if key not in valid:
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise ConfigError(f"unknown config key {key!r} in --set {text!r}; {hint}valid keys: "
                          + ", ".join(valid))
    value = yaml.safe_load(raw) if raw.strip() else ""
    return key.split("."), value


def split_overrides(overrides: Iterable[str], sections: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """``--set`` values -> (the experiment's, those of the command ``sections``); another section's is an
    error (a ``recsys train --set serve.port=1`` would otherwise do nothing, silently)."""
    mine = set(sections)
    experiment, commands = [], []
    for text in overrides:
        head = text.split("=", 1)[0].strip().split(".", 1)[0]
        if head in mine:
            commands.append(text)
        elif head in SECTIONS:
            known = ", ".join(f"{s}.*" for s in sorted(mine)) or "none"
            raise ConfigError(f"--set {text!r}: this command has no {head!r} section (its sections: {known})")
        else:
            experiment.append(text)
    return experiment, commands


def _patch(d: dict[str, Any], keys: list[str], value: Any) -> dict[str, Any]:
    patch: dict[str, Any] = {keys[-1]: value}
    for k in reversed(keys[:-1]):
        patch = {k: patch}
    return _merge(d, patch)


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


def read(config: str | os.PathLike | None) -> dict[str, Any]:
    """The whole mapping of a config file or named experiment, command sections included ({} for None)."""
    d = _read(str(config)) if config else {}
    known = [f.name for f in dataclasses.fields(Experiment)] + list(SECTIONS)
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown} in {config}; valid top-level keys: "
                          + ", ".join(known))
    for name in SECTIONS:
        if d.get(name) is not None and not isinstance(d[name], Mapping):
            raise ConfigError(f"{name}: expected a mapping of {name} settings, got {d[name]!r}")
    return d


def load(
    config: str | os.PathLike | None = None,
    overrides: Iterable[str] = (),
    base: Mapping[str, Any] | None = None,
) -> Experiment:
    """Resolve an experiment: defaults <- ``base`` <- YAML file or named experiment <- ``--set``.

    Command sections of the file (``serve:``, ``study:``, ...) are not the experiment's and are left out.
    A relative ``data.spec_dir`` in a YAML file is taken relative to the current directory.
    """
    d: dict[str, Any] = dict(base or {})
    if config:
        d = _merge(d, {k: v for k, v in read(config).items() if k not in SECTIONS})
    for text in overrides:
        keys, value = parse_override(text)
        d = _patch(d, keys, value)
    return from_dict(d)


def load_section(
    cls: type[T],
    name: str,
    config: str | os.PathLike | Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    explicit: Mapping[str, Any] | None = None,
) -> T:
    """Resolve a command's settings: dataclass defaults <- the ``name:`` section of the config file <-
    ``explicit`` values (flags given on the command line) <- ``--set name.key=value``."""
    whole = read(config) if not isinstance(config, Mapping) else dict(config)
    d = dict(whole.get(name) or {})
    d.update(explicit or {})
    keys = valid_keys(cls, f"{name}.")
    for text in overrides:
        path, value = parse_override(text, keys)
        d = _patch(d, path[1:], value)
    return typed.from_dict(cls, d, error=ConfigError, prefix=f"{name}.")


def save(config: Experiment, directory: str | os.PathLike, sections: Mapping[str, Any] | None = None) -> str:
    """Write the resolved config as ``<directory>/config.yaml`` (atomically) and return its path.

    ``sections``: resolved command settings saved beside it (``{"study": StudySettings(...)}``), so
    the file reruns the whole job (``recsys study --config <directory>/config.yaml``).
    """
    d = to_dict(config)
    d.update({name: to_dict(settings) for name, settings in (sections or {}).items()})
    return atomic.write_text(os.path.join(directory, RESOLVED_FILENAME), yaml.safe_dump(d, sort_keys=False))
