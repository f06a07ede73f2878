"""``recsys activations``: list the registered activations with their parameters and defaults.

Flags are generated from :class:`recsys.settings.activations.ActivationsSettings`.
"""

from __future__ import annotations

from recsys.cli import exits
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
            exits.usage("activations", err)
        print(type(layer).__name__, layer.get_config())
        return
    print(activations.describe())


def main(argv: list[str]) -> None:
    exits.no_arguments("activations", argv)
    run(SETTINGS.load("activations"))
