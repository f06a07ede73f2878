"""The PD gate's flags for ``recsys compare`` and ``recsys promote``, generated from
:class:`serving.gate.Thresholds` (``recsys monitor`` generates the same flags from its settings, whose
gate fields take their defaults and help from the same dataclass).

``--max_churn`` is a deprecated alias kept for old command lines: it meant the flip rate in compare and
the top-k churn in monitor and promote, so each command maps it to that and says so on stderr.
"""

from __future__ import annotations

import sys
from typing import Any

from absl import flags

from serving.gate import Thresholds, gate_flags

FLAGS = flags.FLAGS
# Flags defined here belong to the command that asked for them (its `--help` lists them), not to this module.
flags.disclaim_key_flags()
DEPRECATED_CHURN = "max_churn"


def define(churn_means: str) -> None:
    """Define every gate flag, plus ``--max_churn`` as a deprecated alias of ``--<churn_means>``."""
    for name, default, help_text in gate_flags():
        flags.DEFINE_float(name, default, help_text)
    flags.DEFINE_float(DEPRECATED_CHURN, None, f"deprecated alias of --{churn_means}")


def with_deprecated_churn(values: dict[str, Any], max_churn: float | None, churn_means: str,
                          command: str) -> dict[str, Any]:
    """``values`` with a given ``--max_churn`` moved to ``churn_means``, and a one-line note on stderr."""
    if max_churn is None:
        return values
    print(f"recsys {command}: --max_churn is deprecated; use --{churn_means} (what it means here)",
          file=sys.stderr)
    if values.get(churn_means) is not None and values[churn_means] != max_churn:
        print(f"recsys {command}: --max_churn={max_churn:g} and --{churn_means}={values[churn_means]:g} "
              "disagree", file=sys.stderr)
        sys.exit(2)
    return {**values, churn_means: max_churn}


def thresholds(churn_means: str, command: str) -> Thresholds:
    """The :class:`Thresholds` the parsed flags give (a negative limit is not checked)."""
    values = {name: FLAGS[name].value for name, _, _ in gate_flags()}
    values = with_deprecated_churn(values, FLAGS[DEPRECATED_CHURN].value, churn_means, command)
    return make(values)


def make(values: dict[str, Any]) -> Thresholds:
    """:class:`Thresholds` from flag values; a negative limit means not checked (PD is never negative)."""
    kwargs: dict[str, Any] = {k: None if k.startswith("max_") and v is not None and v < 0 else v
                              for k, v in values.items()}
    return Thresholds(**kwargs)
