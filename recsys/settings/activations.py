"""``recsys activations`` settings (``activations:`` in a config file)."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.typed import setting


@dataclass(frozen=True)
class ActivationsSettings:
    """List the registry, or resolve one spec."""

    show: str = setting("", "resolve one spec (e.g. 'smelu(beta=0.5)') and print its config")
