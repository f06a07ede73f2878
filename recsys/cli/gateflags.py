"""The PD gate's values from the settings of ``recsys compare``, ``monitor`` and ``promote`` (their gate
fields take their defaults and help from :class:`serving.gate.Thresholds`: :mod:`recsys.settings.gate`).

``--max_churn`` is a deprecated alias kept for old command lines: it meant the flip rate in compare and
the top-k churn in monitor and promote, so each command maps it to that and says so on stderr.
"""

from __future__ import annotations

import sys
from typing import Any

from serving.gate import Thresholds, gate_flags

DEPRECATED_CHURN = "max_churn"
DEPRECATED_FLIP_THRESHOLD = "churn_threshold"  # compare's old name of --flip_threshold
FLIP_THRESHOLD = "flip_threshold"
GATE_DEFAULTS = {name: default for name, default, _ in gate_flags()}


def with_deprecated_churn(values: dict[str, Any], max_churn: float | None, churn_means: str,
                          command: str) -> dict[str, Any]:
    """``values`` with a given ``--max_churn`` moved to ``churn_means``, and a one-line note on stderr."""
    return with_alias(values, max_churn, DEPRECATED_CHURN, churn_means, command, " (what it means here)")


def with_alias(values: dict[str, Any], given: float | None, alias: str, means: str, command: str,
               why: str = "") -> dict[str, Any]:
    """``values`` with the value of the deprecated ``--<alias>`` (if given) moved to ``means``; a note on
    stderr, and exit 2 when both are given and disagree."""
    if given is None:
        return values
    print(f"recsys {command}: --{alias} is deprecated; use --{means}{why}", file=sys.stderr)
    current = values.get(means)
    default = GATE_DEFAULTS.get(means)
    if current is not None and current != default and current != given:
        print(f"recsys {command}: --{alias}={given:g} and --{means}={current:g} disagree", file=sys.stderr)
        sys.exit(2)
    return {**values, means: given}


def make(values: dict[str, Any]) -> Thresholds:
    """:class:`Thresholds` from flag values; a negative limit means not checked (PD is never negative)."""
    kwargs: dict[str, Any] = {k: None if k.startswith("max_") and v is not None and v < 0 else v
                              for k, v in values.items()}
    return Thresholds(**kwargs)
