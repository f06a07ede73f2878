"""``recsys compare EXPORT_A EXPORT_B --data SPEC_DIR``: an offline diff of two SavedModel exports.

Loads both with TensorFlow alone, scores the eval split of SPEC_DIR through their ``predict_examples``
signature and reports whether the weight digests are equal, relative (TFMA's symmetric prediction
difference) and absolute PD with percentiles, the flip rate (TFMA's BooleanFlipRates, A the baseline),
top-k churn, each model's AUC and their lineage (B is A's parent, ancestor or distillation teacher, or
the reverse, from the fingerprints on disk). With thresholds it is a CI gate: exit 0 when every given
limit holds, 1 when one is exceeded, 2 on an error. The threshold flags are the same as ``recsys
monitor``'s and ``recsys promote``'s (:class:`serving.gate.Thresholds`); ``--max_churn`` and
``--churn_threshold`` are deprecated aliases of ``--max_flip_rate`` and ``--flip_threshold``.
"""

from __future__ import annotations

import json
import sys

from recsys.cli import exits, gateflags
from recsys.cli.flagging import Flags
from recsys.settings.compare import CompareSettings
from recsys.settings.gate import gate_values

SETTINGS = Flags(CompareSettings, "compare")


def run(export_a: str, export_b: str, s: CompareSettings) -> int:
    """Compare, print the report (or JSON), write ``--json``; the exit status (1: a limit exceeded)."""
    from recsys.repro.compare import compare, format_report

    values = gateflags.with_deprecated_churn(gate_values(s), s.max_churn, "max_flip_rate", "compare")
    values = gateflags.with_alias(values, s.churn_threshold, gateflags.DEPRECATED_FLIP_THRESHOLD,
                                  gateflags.FLIP_THRESHOLD, "compare")
    try:
        diff = compare(export_a, export_b, s.data, gateflags.make(values), s.max_examples,
                       s.require_identical_weights, s.k, s.batch_size)
    except (OSError, ValueError) as err:  # a gate's 2: not evaluated (never read as "refused")
        print(exits.message("compare", err), file=sys.stderr)
        return exits.USAGE
    if s.json == "-":
        print(json.dumps(diff, indent=2))
    else:
        print(format_report(diff))
        if s.json:
            with open(s.json, "w", encoding="utf-8") as fh:
                json.dump(diff, fh, indent=2)
    return 0 if diff["passed"] else 1


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        exits.usage("compare", f"takes two exports, got {argv[1:]}: recsys compare EXPORT_A EXPORT_B --data "
                    "SPEC_DIR [thresholds]")
    sys.exit(run(argv[1], argv[2], SETTINGS.load("compare")))
