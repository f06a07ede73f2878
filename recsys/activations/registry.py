"""The activation registry: public names, parameters and Keras serialization in one decorator, and
the one grammar of spec strings (:func:`parse` for one spec, :func:`split_list` for a list of them).

``@register("smelu")`` on a Keras layer class makes ``"smelu"``, ``"smelu(beta=0.5)"`` and
``{"name": "smelu", "beta": 0.5}`` resolve to a fresh instance (:func:`recsys.activations.get`),
registers the class for Keras (de)serialization under the ``recsys`` package, and lists it in
``recsys activations``. Parameters and their defaults are read from ``__init__``'s signature, so the
registry never disagrees with the code.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from recsys.compat import keras

_PACKAGE = "recsys"

LayerClass = type[keras.layers.Layer]  # Keras is untyped: any class, as far as mypy knows


@dataclasses.dataclass(frozen=True)
class Param:
    """One constructor parameter of a registered activation."""

    name: str
    type: type
    default: Any

    def coerce(self, activation: str, value: Any) -> Any:
        """Check a user-supplied value against the declared type (no silent string-to-number)."""
        if self.type is bool:
            if isinstance(value, bool):
                return value
        elif self.type is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        elif self.type is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif isinstance(value, self.type):
            return value
        raise ValueError(
            f"activation {activation!r}: parameter {self.name} must be {self.type.__name__}, "
            f"got {value!r}. Parameters: {_format_params(_REGISTRY[activation])}"
        )


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registered activation: public name, Keras layer class, parameters, one-line summary."""

    name: str
    cls: LayerClass
    params: tuple[Param, ...]
    preset: Mapping[str, Any]
    summary: str

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


_REGISTRY: dict[str, Entry] = {}
_ALIASES: dict[str, str] = {}


def _signature_params(cls: LayerClass, preset: Mapping[str, Any]) -> tuple[Param, ...]:
    hints = typing.get_type_hints(cls.__init__)
    params = []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in preset:
            continue
        if p.default is inspect.Parameter.empty:
            raise TypeError(f"{cls.__name__}.__init__ parameter {p.name} needs a default")
        params.append(Param(p.name, hints.get(p.name, type(p.default)), p.default))
    return tuple(params)


def register(
    name: str, *, aliases: tuple[str, ...] = (), preset: Mapping[str, Any] | None = None
) -> Callable[[LayerClass], LayerClass]:
    """Register a Keras layer class as activation ``name`` (plus aliases) and for serialization.

    ``preset`` fixes constructor arguments for this public name (e.g. ``gelu_tanh`` is GELU with
    ``approximate=True``); a class registered under several names is serialized once, by class name.
    """

    def decorator(cls: LayerClass) -> LayerClass:
        key = name.lower()
        if key in _REGISTRY or key in _ALIASES:
            raise ValueError(f"activation {name!r} is already registered")
        fixed = dict(preset or {})
        registered = f"{_PACKAGE}>{cls.__name__}"
        if keras.saving.get_registered_object(registered) is None:
            keras.saving.register_keras_serializable(package=_PACKAGE)(cls)
        doc = (inspect.getdoc(cls) or "").strip().splitlines()
        _REGISTRY[key] = Entry(key, cls, _signature_params(cls, fixed), fixed, doc[0] if doc else "")
        for alias in aliases:
            _ALIASES[alias.lower()] = key
        if "activation_name" not in vars(cls):
            cls.activation_name = key
        return cls

    return decorator


def names() -> list[str]:
    """Registered public names (aliases excluded), sorted."""
    return sorted(_REGISTRY)


def entries() -> list[Entry]:
    return [_REGISTRY[n] for n in names()]


def aliases_of(name: str) -> list[str]:
    return sorted(a for a, target in _ALIASES.items() if target == name)


def _format_params(entry: Entry) -> str:
    if not entry.params:
        return "(none)"
    return ", ".join(f"{p.name}: {p.type.__name__} = {p.default!r}" for p in entry.params)


def choices() -> str:
    parts = []
    for entry in entries():
        alias = aliases_of(entry.name)
        parts.append(entry.name + (f" (alias {', '.join(alias)})" if alias else ""))
    return ", ".join(parts)


def lookup(name: str) -> Entry:
    """The registry entry of a public name or alias; ValueError listing the choices otherwise."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ValueError(f"unknown activation {name!r}; valid choices: {choices()}")
    return _REGISTRY[key]


def parse(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"smelu(beta=0.5)"`` into ``("smelu", {"beta": 0.5})``; literals only, keywords only."""
    text = spec.strip()
    if "(" not in text:
        return text, {}
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as err:
        raise ValueError(f"cannot parse activation {spec!r}: write name or name(param=value, ...)") from err
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.args:
        raise ValueError(
            f"cannot parse activation {spec!r}: write name or name(param=value, ...) "
            "with keyword arguments only"
        )
    kwargs = {}
    for kw in node.keywords:
        if kw.arg is None:  # name(**mapping)
            raise ValueError(
                f"cannot parse activation {spec!r}: write name or name(param=value, ...) "
                "with keyword arguments only"
            )
        try:
            kwargs[kw.arg] = ast.literal_eval(kw.value)
        except ValueError as err:
            raise ValueError(
                f"activation {spec!r}: value of {kw.arg} must be a literal (number, bool, string)"
            ) from err
    return node.func.id, kwargs


def split_list(text: str) -> list[str]:
    """Split a list of specs on the commas outside parentheses: ``"relu,smelu(beta=0.5),gsmelu(alpha=1,
    beta=2)"`` -> ``["relu", "smelu(beta=0.5)", "gsmelu(alpha=1, beta=2)"]`` (items stripped, empty ones
    dropped; ValueError for unbalanced parentheses or an empty list)."""
    items: list[str] = []
    start = depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ')' in activation list {text!r}")
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"unbalanced '(' in activation list {text!r}")
    items = [item.strip() for item in [*items, text[start:]] if item.strip()]
    if not items:
        raise ValueError(f"no activations given in {text!r}; valid choices: {choices()}")
    return items


def build(name: str, params: Mapping[str, Any]) -> keras.layers.Layer:
    """A fresh layer for a registered name with validated parameters."""
    entry = lookup(name)
    kwargs = dict(entry.preset)
    for key, value in params.items():
        param = entry.param(key)
        if param is None:
            raise ValueError(
                f"activation {entry.name!r} has no parameter {key!r}. Parameters: {_format_params(entry)}"
            )
        kwargs[key] = param.coerce(entry.name, value)
    try:
        return entry.cls(**kwargs)
    except ValueError as err:
        raise ValueError(
            f"invalid parameters for activation {entry.name!r}: {err}. Parameters: {_format_params(entry)}"
        ) from err


def describe() -> str:
    """A table of the registry for ``recsys activations``."""
    rows = [("name", "aliases", "parameters (default)", "summary")]
    for entry in entries():
        params = ", ".join(f"{p.name}={p.default!r}" for p in entry.params) or "-"
        rows.append((entry.name, ", ".join(aliases_of(entry.name)) or "-", params, entry.summary))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 7)
    return "\n".join(line.rstrip() for line in lines)
