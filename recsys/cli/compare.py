"""``recsys compare EXPORT_A EXPORT_B --data SPEC_DIR``: an offline diff of two SavedModel exports.

Loads both with TensorFlow alone, scores the eval split of SPEC_DIR through their ``predict_examples``
signature and reports whether the weight digests are equal, relative (TFMA's symmetric prediction
difference) and absolute PD with percentiles, churn and each model's AUC. With thresholds it is a CI
gate: exit 0 when every given limit holds, 1 when one is exceeded, 2 on an error.
"""

from __future__ import annotations

import json
import sys

from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("data", None, "directory with feature_spec.json (its eval split is scored)")
flags.DEFINE_integer("max_examples", 0, "score only the first N eval examples (0 = all)")
flags.DEFINE_float("max_relative_pd", None, "fail (exit 1) when relative PD exceeds this")
flags.DEFINE_float("max_absolute_pd", None, "fail (exit 1) when absolute PD exceeds this")
flags.DEFINE_float("max_churn", None, "fail (exit 1) when the share of examples whose decision at "
                   "--churn_threshold flips exceeds this")
flags.DEFINE_float("churn_threshold", 0.5, "decision threshold for churn")
flags.DEFINE_bool("require_identical_weights", False, "fail (exit 1) unless the weight digests are equal")
flags.DEFINE_string("json", None, "also write the full result as JSON here ('-' = stdout only JSON)")
flags.mark_flag_as_required("data")


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        print("usage: recsys compare EXPORT_A EXPORT_B --data SPEC_DIR [thresholds]", file=sys.stderr)
        sys.exit(2)
    from recsys.repro.compare import Thresholds, compare, format_report

    limits = Thresholds(FLAGS.max_relative_pd, FLAGS.max_absolute_pd, FLAGS.max_churn,
                        FLAGS.require_identical_weights)
    try:
        diff = compare(argv[1], argv[2], FLAGS.data, limits, FLAGS.max_examples, FLAGS.churn_threshold)
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
