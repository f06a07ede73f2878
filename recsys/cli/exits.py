"""The exit codes every ``recsys`` subcommand uses, and its one-line error messages.

An expected failure is one line on stderr, ``recsys <command>: <reason>``, never a traceback. The codes
(docs/architecture.md, "Exit codes"):

- 0 done (also ``--help``; a finished run run again is a no-op);
- 1 the command failed or refused: bad input data, a gate that did not pass, a failed request or
  job, an output that exists;
- 2 a usage error: an unknown flag or subcommand, a stray argument, a bad config or setting;
- 78 (``EX_CONFIG``) ``recsys train``/``submit`` will not resume the run in ``--model_dir`` (a changed
  config, data or worker count, or another job holds it): the supervisor never retries it;
- 128 + the signal (130 Ctrl-C, 143 SIGTERM): interrupted; train and submit save a backup first.
"""

from __future__ import annotations

import sys
from typing import NoReturn

OK, FAILED, USAGE = 0, 1, 2
REFUSED_RESUME = 78  # recsys.train.run_state.EXIT_REFUSED (not imported: this module stays light)


def message(command: str, reason: object) -> str:
    """``recsys <command>: <reason>``."""
    return f"recsys {command}: {reason}"


def fail(command: str, reason: object, code: int = FAILED) -> NoReturn:
    """Print ``recsys <command>: <reason>`` on stderr and exit ``code`` (1: the command failed)."""
    print(message(command, reason), file=sys.stderr, flush=True)
    sys.exit(code)


def usage(command: str, reason: object) -> NoReturn:
    """A usage error: ``recsys <command>: <reason>`` on stderr, exit 2."""
    fail(command, reason, USAGE)


def no_arguments(command: str, argv: list[str]) -> None:
    """Refuse positional arguments (exit 2): every input of ``command`` is a flag."""
    if len(argv) > 1:
        usage(command, f"unexpected arguments {argv[1:]} (every input is a flag: recsys {command} --help)")
