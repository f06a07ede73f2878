"""The ``recsys`` command: ``recsys <subcommand> [--flags]``.

Each subcommand is a module under :mod:`recsys.cli` that defines its absl flags and a ``main(argv)``;
the module is imported only when its subcommand runs, so one subcommand's flags (and imports) never
leak into another's.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module, one-line description).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "activations": ("recsys.cli.activations", "list the activation registry with parameters"),
    "preprocess": ("recsys.cli.preprocess", "Beam pipeline: raw logs -> TFRecord shards + spec"),
    "study": ("recsys.cli.study", "reproducibility study: K replicas per activation, PD vs accuracy"),
    "demo": ("recsys.cli.demo", "run the main job end to end on embedded defaults"),
    "train": ("recsys.cli.train", "train, evaluate and export a ranking model (TFRS, multi-worker)"),
    "serve": ("recsys.cli.serve", "model server with TF Serving's gRPC and REST APIs (versions, batching)"),
    "rows": ("recsys.cli.rows", "write query rows (JSON lines of raw features) from a preprocessed split"),
    "query": ("recsys.cli.query", "send rows (JSON lines, CSV, Criteo TSV) to a server, print predictions"),
    "monitor": ("recsys.cli.monitor", "replica-divergence monitor: online PD, Prometheus, --check gate"),
    "promote": ("recsys.cli.promote", "move a version label to a candidate version if the PD gate passes"),
    "submit": ("recsys.cli.submit", "run a training job on a supervised local cluster or Kubernetes"),
    "compare": ("recsys.cli.compare", "offline diff of two exports: weights, PD, flip rate, AUC (a gate)"),
    "reproduce": ("recsys.cli.reproduce", "rebuild an export: bit for bit, or what differs"),
    "plan": ("recsys.cli.plan", "embedding cost model: memory per worker and all-reduce bytes per step"),
}


def _usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = ["usage: recsys [-v] <subcommand> [--flags]   (recsys <subcommand> --help for its flags)", ""]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, desc) in SUBCOMMANDS.items()]
    lines += ["", "  -v, --verbose  also print TensorFlow's INFO/WARNING logs (hidden by default)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Dispatch to the subcommand module and run it under ``absl.app``."""
    from recsys import quiet

    verbose, argv = quiet.wants_verbose(list(sys.argv if argv is None else argv))
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(_usage())
        sys.exit(0 if len(argv) >= 2 else 2)
    name = argv[1]
    if name not in SUBCOMMANDS:
        print(f"recsys: unknown subcommand {name!r}\n\n{_usage()}", file=sys.stderr)
        sys.exit(2)
    quiet.apply(verbose)  # before the subcommand imports TensorFlow; workers inherit it
    module = importlib.import_module(SUBCOMMANDS[name][0])
    from absl import app

    # absl's --help prints __main__'s docstring and the flags of the module named by sys.argv[0]:
    # point both at the subcommand so `recsys <subcommand> --help` documents that subcommand.
    sys.modules["__main__"].__doc__ = module.__doc__ or f"recsys {name}"
    sys.argv[0] = module.__name__
    app.run(module.main, argv=[f"recsys {name}"] + argv[2:], flags_parser=_parse_flags)


# absl's help flags (and -h, which absl lacks): they print the flags and exit, 0 here (absl exits 1).
HELP_FLAGS = ("--help", "--helpshort", "--helpfull", "--helpxml", "-?", "-h")


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, but a bad flag exits 2 (as argparse), never 1, which gates use for 'refused',
    and a help flag exits 0 (absl exits 1, which scripts read as a failure)."""
    from absl import flags

    head = argv[: argv.index("--")] if "--" in argv else argv
    asked_help = any(arg in HELP_FLAGS for arg in head)
    argv = ["--help" if arg == "-h" else arg for arg in head] + argv[len(head):]
    try:
        return flags.FLAGS(argv)
    except flags.Error as err:
        sys.stderr.write(f"{argv[0]}: {err} ({argv[0]} --help lists the flags)\n")  # recsys <name>: ...
        sys.exit(2)
    except SystemExit as exit_:
        if asked_help and exit_.code == 1:  # absl's help flags print to stdout and exit 1
            sys.exit(0)
        raise
