"""The one loader from plain mappings (YAML, JSON, ``--set``) to typed frozen dataclasses, and back.

Experiment configs, command settings, feature specs and data schemas all go through :func:`from_dict`:
values are checked against the field type hints (``Literal`` choices, tuples, dicts, ``Optional``,
nested dataclasses, ints accepted as floats), unknown keys fail with the list of valid keys, and a
``ValueError`` from a dataclass's ``__post_init__`` (its range checks) comes back naming the dotted key.
It sits in ``pipelines`` (the bottom layer) so the preprocessing code can use it without the training
stack. Field metadata it reads: ``parse`` (a function applied to a string given for a non-string field,
e.g. ``"relu,smelu"`` -> a tuple) and ``serialize=False`` (left out of :func:`to_dict`).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class TypedError(ValueError):
    """A mapping that does not fit its dataclass; the message names the key and what is valid."""


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _dataclass_type(hint: Any) -> type | None:
    """``hint`` itself when it is a dataclass type."""
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def valid_keys(cls: type, prefix: str = "") -> list[str]:
    """All dotted keys of a dataclass, nested dataclasses expanded, e.g. ``model.activation``."""
    keys: list[str] = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        nested = _dataclass_type(hints[f.name])
        keys += valid_keys(nested, f"{prefix}{f.name}.") if nested else [prefix + f.name]
    return keys


class _Coercer:
    """Checks one value against one type hint; ``lenient`` also turns numbers into strings and back."""

    def __init__(self, error: type[Exception], lenient: bool, what: str) -> None:
        self.error, self.lenient, self.what = error, lenient, what

    def __call__(self, value: Any, hint: Any, key: str) -> Any:
        origin = typing.get_origin(hint)
        if origin in (typing.Union, types.UnionType):
            return self._union(value, hint, key)
        if hint is type(None):
            if value is None:
                return None
            raise self.error(f"{key}: expected null, got {value!r}")
        if hint is Any:
            return value
        nested = _dataclass_type(hint)
        if nested is not None:
            if isinstance(value, nested):
                return value
            return self.build(nested, {} if value is None else value, key + ".")
        if origin is typing.Literal:
            choices = typing.get_args(hint)
            if value not in choices:
                raise self.error(f"{key} must be one of {list(choices)}, got {value!r}")
            return value
        if origin is tuple:
            return self._tuple(value, hint, key)
        if origin in (dict, Mapping):
            if not isinstance(value, Mapping):
                raise self.error(f"{key}: expected a mapping, got {value!r}")
            kt, vt = typing.get_args(hint)
            return {self(k, kt, key): self(v, vt, f"{key}.{k}") for k, v in value.items()}
        if origin is list:
            if not isinstance(value, list | tuple):
                raise self.error(f"{key}: expected a list, got {value!r}")
            (item,) = typing.get_args(hint)
            return [self(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return self._scalar(value, hint, key)

    def _union(self, value: Any, hint: Any, key: str) -> Any:
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return self(value, option, key)
            except self.error as err:
                errors.append(str(err))
        if len(errors) == 1:
            raise self.error(errors[0])
        raise self.error(f"{key}: {value!r} matches none of {hint}")

    def _tuple(self, value: Any, hint: Any, key: str) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise self.error(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(self(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise self.error(f"{key}: expected {len(args)} values, got {value!r}")
        return tuple(self(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))

    def _scalar(self, value: Any, hint: Any, key: str) -> Any:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if hint is float:
            if number:
                return float(value)
            if self.lenient and isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise self.error(f"{key}: expected a number, got {value!r}")
        if hint is bool:
            if isinstance(value, bool):
                return value
            if self.lenient and value in (0, 1):
                return bool(value)
            raise self.error(f"{key}: expected true/false, got {value!r}")
        if hint is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise self.error(f"{key}: expected int, got {value!r}")
        if hint is str:
            if isinstance(value, str):
                return value
            if self.lenient and number:
                return str(value)
            raise self.error(f"{key}: expected str, got {value!r}")
        if isinstance(hint, type) and not isinstance(value, hint):
            raise self.error(f"{key}: expected {hint.__name__}, got {value!r}")
        return value

    def build(self, cls: type[T], mapping: Any, prefix: str) -> T:
        """The dataclass ``cls`` from ``mapping``, every field checked."""
        if not isinstance(mapping, Mapping):
            raise self.error(f"{prefix.rstrip('.') or self.what}: expected a mapping, got {mapping!r}")
        hints = _hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(mapping) - set(fields))
        if unknown:
            close = [prefix + m for k in unknown
                     for m in difflib.get_close_matches(str(k), list(fields), n=1, cutoff=0.6)]
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise self.error(f"unknown {self.what} key(s) {[prefix + str(k) for k in unknown]}; {hint}"
                             "valid keys: " + ", ".join(valid_keys(cls, prefix)))
        missing = [n for n, f in fields.items() if n not in mapping and f.init and _required(f)]
        if missing:
            raise self.error(f"{prefix.rstrip('.') or self.what}: missing required key(s) "
                             f"{[prefix + n for n in missing]}")
        kwargs = {}
        for name, value in mapping.items():
            parse: Callable[[str], Any] | None = fields[name].metadata.get("parse")
            hint = hints[name]
            if parse is not None and isinstance(value, str) and hint is not str:
                try:
                    value = parse(value)
                except ValueError as err:
                    raise self.error(f"{prefix}{name}: {err}") from None
            kwargs[name] = self(value, hint, prefix + name)
        try:
            return cls(**kwargs)
        except ValueError as err:  # a range check of the dataclass (``__post_init__``)
            if isinstance(err, self.error) and str(err).startswith(prefix):
                raise
            raise self.error(f"{prefix}{err}") from None


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def from_dict(
    cls: type[T],
    mapping: Any,
    *,
    error: type[Exception] = TypedError,
    lenient: bool = False,
    prefix: str = "",
    what: str = "config",
) -> T:
    """Build the dataclass ``cls`` from a nested mapping; any mismatch raises ``error``.

    ``lenient`` accepts numbers for strings and numeric strings for floats (hand-written schema files);
    ``what`` names the kind of mapping in messages ("unknown schema key(s) ...").
    """
    return _Coercer(error, lenient, what).build(cls, mapping, prefix)


def plain(value: Any) -> Any:
    """A JSON/YAML-friendly copy: dataclasses become dicts, tuples lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """The nested plain dict of a dataclass instance; fields with ``metadata={"serialize": False}`` are left
    out. ``from_dict(type(obj), to_dict(obj)) == obj``."""
    return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
            if f.metadata.get("serialize", True)}


def setting(default: Any = dataclasses.MISSING, help: str = "", **metadata: Any) -> Any:
    """A dataclass field with its ``--help`` text and loader/flag metadata (flag, parse, multi)."""
    return dataclasses.field(default=default, metadata={"help": help, **metadata})
