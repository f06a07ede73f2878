"""``recsys compare EXPORT_A EXPORT_B --data SPEC_DIR``: an offline diff of two SavedModel exports.

Loads both with TensorFlow alone, scores the eval split of SPEC_DIR through their ``predict_examples``
signature and reports whether the weight digests are equal, relative (TFMA's symmetric prediction
difference) and absolute PD with percentiles, the flip rate (TFMA's BooleanFlipRates, A the baseline),
top-k churn and each model's AUC. With thresholds it is a CI gate: exit 0 when every given limit holds,
1 when one is exceeded, 2 on an error. The threshold flags are the same as ``recsys monitor``'s and
``recsys promote``'s (:class:`serving.gate.Thresholds`); ``--max_churn`` and ``--churn_threshold`` are
deprecated aliases of ``--max_flip_rate`` and ``--flip_threshold``.
"""

from __future__ import annotations

import json
import sys

from absl import flags

from recsys.cli import gateflags

FLAGS = flags.FLAGS
flags.DEFINE_string("data", None, "directory with feature_spec.json (its eval split is scored)")
flags.DEFINE_integer("max_examples", 0, "score only the first N eval examples (0 = all)")
gateflags.define(churn_means="max_flip_rate")
flags.DEFINE_float("churn_threshold", None, "deprecated alias of --flip_threshold")
flags.DEFINE_integer("k", 10, "k of top-k churn")
flags.DEFINE_integer("batch_size", 64, "eval rows per query for top-k churn (as the monitor's requests)")
flags.DEFINE_bool("require_identical_weights", False, "fail (exit 1) unless the weight digests are equal")
flags.DEFINE_string("json", None, "also write the full result as JSON here ('-' = stdout only JSON)")
flags.mark_flag_as_required("data")


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        print("usage: recsys compare EXPORT_A EXPORT_B --data SPEC_DIR [thresholds]", file=sys.stderr)
        sys.exit(2)
    from recsys.repro.compare import compare, format_report

    limits = gateflags.thresholds("max_flip_rate", "compare")
    if FLAGS.churn_threshold is not None:
        print("recsys compare: --churn_threshold is deprecated; use --flip_threshold", file=sys.stderr)
        limits = gateflags.make({**limits.as_dict(), "flip_threshold": FLAGS.churn_threshold})
    try:
        diff = compare(argv[1], argv[2], FLAGS.data, limits, FLAGS.max_examples,
                       FLAGS.require_identical_weights, FLAGS.k, FLAGS.batch_size)
    except (OSError, ValueError) as err:
        print(f"recsys compare: {err}", file=sys.stderr)
        sys.exit(2)
    if FLAGS.json == "-":
        print(json.dumps(diff, indent=2))
    else:
        print(format_report(diff))
        if FLAGS.json:
            with open(FLAGS.json, "w", encoding="utf-8") as fh:
                json.dump(diff, fh, indent=2)
    sys.exit(0 if diff["passed"] else 1)
