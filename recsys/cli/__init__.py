"""The ``recsys`` command: ``recsys <subcommand> [--flags]``.

Each subcommand is a module under :mod:`recsys.cli` that defines its absl flags and a ``main(argv)``;
the module is imported only when its subcommand runs, so one subcommand's flags (and imports) never
leak into another's.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module, one-line description). Later issues add train, submit, study, serve, query, monitor.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "activations": ("recsys.cli.activations", "list the activation registry with parameters"),
    "preprocess": ("recsys.cli.preprocess", "Beam pipeline: raw logs -> TFRecord shards + spec"),
    "demo": ("recsys.cli.demo", "run the main job end to end on embedded defaults"),
}


def _usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = ["usage: recsys <subcommand> [--flags]   (recsys <subcommand> --help for its flags)", ""]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, desc) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Dispatch to the subcommand module and run it under ``absl.app``."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(_usage())
        sys.exit(0 if len(argv) >= 2 else 2)
    name = argv[1]
    if name not in SUBCOMMANDS:
        print(f"recsys: unknown subcommand {name!r}\n\n{_usage()}", file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(SUBCOMMANDS[name][0])
    from absl import app

    app.run(module.main, argv=[f"recsys {name}"] + argv[2:])
