"""``recsys promote``: move a version label only when the PD gate between two labels passes.

    recsys promote --server=127.0.0.1:8500 --model=ranker --candidate=canary --target=stable \\
        --rows=eval.jsonl --model_config_file=models.config --max_relative_pd=0.15 --max_topk_churn=0.3
    recsys promote --rollback --server=127.0.0.1:8500 --model=ranker --model_config_file=models.config

Runs ``recsys monitor --check`` between the versions of --target and --candidate; when it passes,
moves --target to the candidate's version with HandleReloadConfigRequest on every --server and then
rewrites --model_config_file atomically (history in <file>.history.json; --rollback undoes the last
promotion). Prints the decision as one JSON line. Exit 0: promoted (or nothing to do, or rolled
back); 1: refused by the gate (nothing changed); 2: error (nothing changed). The threshold flags are
``recsys monitor``'s and ``recsys compare``'s (:class:`serving.gate.Thresholds`; at least one is needed);
``--max_churn`` is a deprecated alias of ``--max_topk_churn``.
"""

from __future__ import annotations

import json
import logging
import sys

from absl import flags

from recsys.cli import gateflags

FLAGS = flags.FLAGS
flags.DEFINE_multi_string(
    "server",
    [],
    "HOST:PORT of the model server (gRPC); repeat for replicas: the "
    "gate runs on the first, the label moves on all",
)
flags.DEFINE_string("model", "", "model name in the server's config")
flags.DEFINE_string("candidate", "canary", "label whose version is promoted")
flags.DEFINE_string("target", "stable", "label that is moved to the candidate's version")
flags.DEFINE_string("rows", "", "rows for the PD gate: JSON lines, CSV with header, or Criteo TSV")
flags.DEFINE_enum("format", "auto", ["auto", "jsonl", "csv", "criteo"], "format of --rows")
flags.DEFINE_string(
    "model_config_file",
    "",
    "the server's models.config (ModelServerConfig text proto), edited atomically when the label moves",
)
gateflags.define(churn_means="max_topk_churn")
flags.DEFINE_integer("batch_size", 64, "rows per request (one request is one query for top-k churn)")
flags.DEFINE_integer("k", 10, "k of top-k churn")
flags.DEFINE_string("signature_name", "", "signature to call (default serving_default)")
flags.DEFINE_string("output", "", "output compared (default: the only output, or probability/scores)")
flags.DEFINE_bool("dry_run", False, "decide and print, change nothing")
flags.DEFINE_bool("rollback", False, "move --target back to its version before the last promotion")
flags.DEFINE_string("history_file", "", "promotion history (default <model_config_file>.history.json)")
flags.DEFINE_string("log_file", "", "append every decision here as a JSON line")
flags.DEFINE_float("timeout", 30.0, "seconds per RPC")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise SystemExit(f"recsys promote: unexpected arguments {argv[1:]}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not FLAGS.model or not FLAGS.model_config_file:
        print("recsys promote: --model and --model_config_file are required", file=sys.stderr)
        sys.exit(2)
    from serving.tools.promote import EXIT_CODES, PromoteConfig, PromoteError, Promotion

    config = PromoteConfig(
        servers=FLAGS.server,
        model=FLAGS.model,
        model_config_file=FLAGS.model_config_file,
        candidate=FLAGS.candidate,
        target=FLAGS.target,
        rows=FLAGS.rows,
        row_format=FLAGS.format,
        batch_size=FLAGS.batch_size,
        k=FLAGS.k,
        signature_name=FLAGS.signature_name,
        output=FLAGS.output,
        thresholds=gateflags.thresholds("max_topk_churn", "promote"),
        dry_run=FLAGS.dry_run,
        rollback=FLAGS.rollback,
        history_file=FLAGS.history_file,
        log_file=FLAGS.log_file,
        timeout=FLAGS.timeout,
    )
    try:
        promotion = Promotion(config)
    except PromoteError as err:
        print(f"recsys promote: {err}", file=sys.stderr)
        sys.exit(2)
    try:
        record = promotion.run()
    finally:
        promotion.close()
    print(json.dumps(record, sort_keys=True), flush=True)
    sys.exit(EXIT_CODES[record["decision"]])
