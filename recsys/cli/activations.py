"""``recsys activations``: list the registered activations with their parameters and defaults.

Flags are generated from :class:`recsys.settings.activations.ActivationsSettings`.
"""

from __future__ import annotations

from recsys.cli.flagging import Flags
from recsys.settings.activations import ActivationsSettings

SETTINGS = Flags(ActivationsSettings, "activations")


def run(settings: ActivationsSettings) -> None:
    """Print the registry, or the layer config ``settings.show`` resolves to."""
    from recsys import activations
    from recsys.activations import registry

    if settings.show:
        try:
            layer = registry.build(*registry.parse(settings.show))  # what get() does for a string: a layer
        except ValueError as err:
            raise SystemExit(f"error: {err}") from None
        print(type(layer).__name__, layer.get_config())
        return
    print(activations.describe())


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise SystemExit(f"unexpected arguments: {argv[1:]}")
    run(SETTINGS.load("activations"))
