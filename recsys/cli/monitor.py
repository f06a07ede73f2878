"""``recsys monitor``: PD between served replicas, online (TensorBoard + Prometheus + alerts) or as a gate.

    recsys monitor --replica=127.0.0.1:8500/ranker:stable --replica=127.0.0.1:8500/ranker:canary \\
        --rows=eval.jsonl --logdir=/tmp/pd --metrics_port=9100
    recsys monitor --check --max_relative_pd=0.05 --replica=... --replica=... --rows=eval.jsonl
      (exit 0: within thresholds; 1: a threshold crossed -- do not move the label; 2: error)
"""

from __future__ import annotations

import json
import logging
import sys

from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("replica", [], "[http://]host:port/model[@version|:label]; repeat (>= 2)")
flags.DEFINE_string("rows", "", "rows to send: JSON lines, CSV with header, or Criteo TSV")
flags.DEFINE_enum("format", "auto", ["auto", "jsonl", "csv", "criteo"], "format of --rows")
flags.DEFINE_string("request_log", "", "PredictionLog TFRecord to replay instead of --rows")
flags.DEFINE_integer("batch_size", 64, "rows per request (one request is one query for top-k churn)")
flags.DEFINE_integer("window", 10000, "rows in the sliding PD window")
flags.DEFINE_integer("evaluate_every", 20, "requests between PD evaluations")
flags.DEFINE_integer("k", 10, "k of top-k churn")
flags.DEFINE_string("group", "replicas", "group name in the TensorBoard tags (pd/<group>/...)")
flags.DEFINE_string("logdir", "", "TensorBoard directory (same tags and layout as the study)")
flags.DEFINE_integer("metrics_port", 0, "serve Prometheus metrics on this port (0: off)")
flags.DEFINE_string("metrics_host", "127.0.0.1", "address for the metrics endpoint")
flags.DEFINE_string("signature_name", "", "signature to call (default serving_default)")
flags.DEFINE_string("output", "", "output compared (default: the only output, or probability/scores)")
flags.DEFINE_float("max_relative_pd", None, "alert above this relative PD")
flags.DEFINE_float("max_absolute_pd", None, "alert above this absolute PD")
flags.DEFINE_float("max_share_above", None, "alert above this share of rows with relative diff > 10%")
flags.DEFINE_float("max_churn", None, "alert above this top-k churn")
flags.DEFINE_bool(
    "check",
    False,
    "one pass over the rows, print the PD as JSON, exit 1 if a "
    "threshold is crossed (the gate before moving a version label)",
)
flags.DEFINE_integer("max_requests", 0, "stop after this many requests (continuous mode; 0: no limit)")
flags.DEFINE_float("duration", 0.0, "stop after this many seconds (continuous mode; 0: no limit)")
flags.DEFINE_float("qps", 0.0, "request rate limit in continuous mode (0: unlimited)")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise SystemExit(f"recsys monitor: unexpected arguments {argv[1:]}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from serving.divergence import Thresholds
    from serving.prometheus import MetricsServer
    from serving.tools.monitor import Monitor, MonitorConfig

    config = MonitorConfig(
        replicas=FLAGS.replica,
        rows=FLAGS.rows,
        row_format=FLAGS.format,
        request_log=FLAGS.request_log,
        batch_size=FLAGS.batch_size,
        window=FLAGS.window,
        evaluate_every=FLAGS.evaluate_every,
        k=FLAGS.k,
        group=FLAGS.group,
        logdir=FLAGS.logdir or None,
        signature_name=FLAGS.signature_name,
        output=FLAGS.output,
        qps=FLAGS.qps,
        thresholds=Thresholds(
            FLAGS.max_relative_pd, FLAGS.max_absolute_pd, FLAGS.max_share_above, FLAGS.max_churn
        ),
    )
    try:
        monitor = Monitor(config)
    except Exception as err:  # noqa: BLE001 - a bad replica or file is exit 2 with the reason
        print(f"recsys monitor: {err}", file=sys.stderr)
        sys.exit(2)
    metrics = (
        MetricsServer(monitor.metrics_text, FLAGS.metrics_host, FLAGS.metrics_port)
        if FLAGS.metrics_port
        else None
    )
    try:
        if FLAGS.check:
            try:
                values = monitor.check()
            except Exception as err:  # noqa: BLE001
                print(f"recsys monitor: {err}", file=sys.stderr)
                sys.exit(2)
            print(json.dumps(values, sort_keys=True))
            if values["alerts"]:
                print(f"recsys monitor: CHECK FAILED: {', '.join(values['alerts'])}", file=sys.stderr)
                sys.exit(1)
            return

        def show(values: dict) -> None:
            print(json.dumps({k: v for k, v in values.items()}, sort_keys=True), flush=True)

        monitor.run(FLAGS.max_requests, FLAGS.duration, on_evaluate=show)
    finally:
        if metrics is not None:
            metrics.stop()
        monitor.close()
