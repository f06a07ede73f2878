"""The one resolver of activation specs: a typed value with one canonical string, and the layer.

``Activation.parse("smelu(beta=1)")``, ``Activation.parse("SmeLU(beta=1.0)")``,
``Activation.parse({"name": "smelu"})`` and ``Activation.parse(get("smelu"))`` are equal and print as
``smelu``: aliases resolve to the registry name, values are coerced to the declared parameter types,
parameters equal to their default are dropped and the rest follow the constructor's order. The
canonical string names study variants, TensorBoard runs and served models (their tag-safe form is
``serving.summaries.group_tag``). :func:`get` builds the layer from the same resolution, so a string
and a dict of the same activation give the same layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, cast

from recsys.activations import registry
from recsys.compat import keras
from recsys.config.schema import ActivationSpec


@dataclasses.dataclass(frozen=True)
class Activation:
    """A registered activation and its non-default parameters (in signature order)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, spec: ActivationLike) -> Activation:
        """From a string (``"smelu(beta=0.5)"``), a dict (``{"name": "smelu", "beta": 0.5}``, or a Keras
        serialization dict), an :class:`Activation`, or a registered layer (instance or class); raises
        ValueError (listing the choices) for anything the registry rejects."""
        if isinstance(spec, Activation):
            return spec
        if isinstance(spec, str) or (isinstance(spec, Mapping) and "class_name" not in spec):
            return _resolve(spec)[0]
        layer = get(spec)
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(f"activation {spec!r} has no canonical string: it is not a registered "
                             f"activation; valid choices: {registry.choices()}")
        return _of_layer(layer)

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.params)})"

    def as_dict(self) -> dict[str, Any]:
        """``{"name": ..., **params}``: the config form."""
        return {"name": self.name, **dict(self.params)}

    def build(self) -> Any:
        """A fresh layer (one per use site: learnable activations are never shared)."""
        return registry.build(self.name, dict(self.params))


# What get() resolves: a spec (string or dict), an Activation, a Keras serialization dict or a callable.
ActivationLike = ActivationSpec | Mapping[str, Any] | Activation | Callable[..., Any]


def _resolve(spec: str | Mapping[str, Any]) -> tuple[Activation, Any]:
    """A string or ``{"name": ...}`` dict -> its canonical value and a fresh layer (built once: the
    constructor is what checks the parameters' ranges)."""
    if isinstance(spec, str):
        name, given = registry.parse(spec)
    elif "name" in spec:
        given = {k: v for k, v in spec.items() if k != "name"}
        name = str(spec["name"])
    else:
        raise ValueError(f"activation dict needs a 'name' key, got {dict(spec)!r}; "
                         f"valid choices: {registry.choices()}")
    entry = registry.lookup(name)
    layer = registry.build(entry.name, given)  # validates names, types and ranges with the registry's errors
    values = {p.name: p.coerce(entry.name, given[p.name]) for p in entry.params if p.name in given}
    kept = tuple((p.name, values[p.name]) for p in entry.params
                 if p.name in values and values[p.name] != entry.preset.get(p.name, p.default))
    return Activation(entry.name, kept), layer


def _of_layer(layer: Any) -> Activation:
    """The registered activation a layer is: its class's most specific entry (presets matching)."""
    config = layer.get_config()
    matches = [e for e in registry.entries() if e.cls is type(layer)
               and all(config.get(k) == v for k, v in e.preset.items())]
    if not matches:
        raise ValueError(f"activation {layer!r} has no canonical string: {type(layer).__name__} is not a "
                         f"registered activation; valid choices: {registry.choices()}")
    entry = max(matches, key=lambda e: len(e.preset))
    return _resolve({"name": entry.name, **{p.name: config[p.name] for p in entry.params}})[0]


def get(spec: ActivationLike) -> Callable[..., Any]:
    """Resolve a spec to an activation; strings and dicts give a fresh layer.

    - ``"smelu"``, ``"smelu(beta=0.5)"``: a registered name with optional keyword parameters;
    - ``{"name": "smelu", "beta": 0.5}``, or a Keras serialization dict (``class_name``/``config``);
    - an :class:`Activation`: its layer;
    - a callable (a layer instance, a function): returned; a layer class: instantiated (a registered
      one with its name's preset, e.g. ``GELUTanh`` approximates).
    """
    if isinstance(spec, Activation):
        return cast(Callable[..., Any], spec.build())
    if isinstance(spec, Mapping) and "class_name" in spec:
        return cast(Callable[..., Any], keras.layers.deserialize(dict(spec)))
    if isinstance(spec, str | Mapping):
        return cast(Callable[..., Any], _resolve(spec)[1])
    if isinstance(spec, type) and issubclass(spec, keras.layers.Layer):
        own = [e for e in registry.entries() if e.cls is spec]
        entry = min(own, key=lambda e: len(e.preset), default=None)
        return cast(Callable[..., Any], spec() if entry is None else registry.build(entry.name, {}))
    if callable(spec):
        return spec
    raise ValueError(
        f"cannot resolve activation {spec!r}: give a name, a dict or a callable; "
        f"valid choices: {registry.choices()}"
    )


def canonical(spec: ActivationLike) -> str:
    """The canonical string of an activation spec."""
    return str(Activation.parse(spec))

