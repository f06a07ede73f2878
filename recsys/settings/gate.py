"""The PD gate's fields for the settings of ``recsys compare``, ``monitor`` and ``promote``: each takes
its default and help from :class:`serving.gate.Thresholds`, so the three commands share one set of flag
names and defaults."""

from __future__ import annotations

import dataclasses
from typing import Any

from pipelines.typed import setting
from serving.gate import Thresholds

GATE_FIELDS = {f.name: f for f in dataclasses.fields(Thresholds)}


def gate(name: str) -> Any:
    """A settings field with :class:`serving.gate.Thresholds`' default and help for ``name``."""
    return setting(GATE_FIELDS[name].default, GATE_FIELDS[name].metadata["help"])


def gate_values(settings: Any) -> dict[str, Any]:
    """The gate fields of a settings object, by name."""
    return {name: getattr(settings, name) for name in GATE_FIELDS}
