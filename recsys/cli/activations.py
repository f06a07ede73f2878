"""``recsys activations``: list the registered activations with their parameters and defaults."""

from __future__ import annotations

from absl import flags

flags.DEFINE_string("show", None, "Resolve one spec (e.g. 'smelu(beta=0.5)') and print its config.")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    from recsys import activations
    from recsys.activations import registry

    if len(argv) > 1:
        raise SystemExit(f"unexpected arguments: {argv[1:]}")
    if FLAGS.show:
        try:
            layer = registry.build(*registry.parse(FLAGS.show))  # what get() does for a string: a layer
        except ValueError as err:
            raise SystemExit(f"error: {err}") from None
        print(type(layer).__name__, layer.get_config())
        return
    print(activations.describe())
