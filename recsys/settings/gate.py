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


@dataclasses.dataclass(frozen=True)
class GateSettings:
    """The gate's fields, inherited by the settings of compare, monitor and promote (one flag name, one
    default and one help text each, all from :class:`serving.gate.Thresholds`)."""

    max_relative_pd: float | None = gate("max_relative_pd")
    max_absolute_pd: float | None = gate("max_absolute_pd")
    max_share_above: float | None = gate("max_share_above")
    max_flip_rate: float | None = gate("max_flip_rate")
    max_topk_churn: float | None = gate("max_topk_churn")
    flip_threshold: float = gate("flip_threshold")
