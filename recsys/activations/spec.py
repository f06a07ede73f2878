"""An activation spec parsed once into a typed value with one canonical string.

``Activation.parse("smelu(beta=1)")``, ``Activation.parse("SmeLU(beta=1.0)")`` and
``Activation.parse({"name": "smelu"})`` are equal and print as ``smelu``: aliases resolve to the
registry name, values are coerced to the declared parameter types, parameters equal to their default
are dropped and the rest follow the constructor's order. The canonical string names study variants,
TensorBoard runs and served models; :attr:`Activation.tag` is its tag-safe form.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from recsys.activations import registry


@dataclasses.dataclass(frozen=True)
class Activation:
    """A registered activation and its non-default parameters (in signature order)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any] | Activation) -> Activation:
        """From a string (``"smelu(beta=0.5)"``), a dict (``{"name": "smelu", "beta": 0.5}``) or an
        :class:`Activation`; raises ValueError (listing the choices) for anything the registry rejects."""
        if isinstance(spec, Activation):
            return spec
        if isinstance(spec, str):
            name, given = registry.parse(spec)
        elif isinstance(spec, Mapping) and "name" in spec:
            given = {k: v for k, v in spec.items() if k != "name"}
            name = str(spec["name"])
        else:
            raise ValueError(f"cannot parse activation {spec!r}: give name(param=value, ...) or a dict "
                             "with a 'name' key")
        entry = registry.lookup(name)
        registry.build(entry.name, given)  # validates names, types and ranges with the registry's errors
        values = {p.name: p.coerce(entry.name, given[p.name]) for p in entry.params if p.name in given}
        kept = tuple((p.name, values[p.name]) for p in entry.params
                     if p.name in values and values[p.name] != entry.preset.get(p.name, p.default))
        return cls(entry.name, kept)

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.params)})"

    @property
    def tag(self) -> str:
        """``smelu(beta=0.5)`` -> ``smelu_beta_0.5`` (for tags, run names and model names)."""
        return re.sub(r"[^A-Za-z0-9_.\-]+", "_", str(self)).strip("_")

    def as_dict(self) -> dict[str, Any]:
        """``{"name": ..., **params}``: the config form."""
        return {"name": self.name, **dict(self.params)}

    def build(self) -> Any:
        """A fresh layer (one per use site: learnable activations are never shared)."""
        return registry.build(self.name, dict(self.params))


def canonical(spec: str | Mapping[str, Any] | Activation) -> str:
    """The canonical string of an activation spec."""
    return str(Activation.parse(spec))
