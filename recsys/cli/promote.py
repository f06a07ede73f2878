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

from recsys.cli import exits, gateflags
from recsys.cli.flagging import Flags
from recsys.settings.gate import gate_values
from recsys.settings.promote import PromoteSettings

SETTINGS = Flags(PromoteSettings, "promote")


def run(s: PromoteSettings) -> int:
    """Decide, move or refuse, print the decision as one JSON line; the exit status (EXIT_CODES)."""
    from serving.tools.promote import EXIT_CODES, PromoteConfig, PromoteError, Promotion

    values = gateflags.with_deprecated_churn(gate_values(s), s.max_churn, "max_topk_churn", "promote")
    config = PromoteConfig(
        servers=list(s.server), model=s.model, model_config_file=s.model_config_file,
        candidate=s.candidate, target=s.target, rows=s.rows, row_format=s.format,
        batch_size=s.batch_size, k=s.k, signature_name=s.signature_name, output=s.output,
        thresholds=gateflags.make(values), dry_run=s.dry_run, rollback=s.rollback,
        history_file=s.history_file, log_file=s.log_file, timeout=s.timeout, tls=s.client_tls(),
    )  # fmt: skip
    try:
        promotion = Promotion(config)
    except PromoteError as err:
        print(f"recsys promote: {err}", file=sys.stderr)
        return 2
    try:
        record = promotion.run()
    finally:
        promotion.close()
    print(json.dumps(record, sort_keys=True), flush=True)
    return EXIT_CODES[record["decision"]]


def main(argv: list[str]) -> None:
    exits.no_arguments("promote", argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(run(SETTINGS.load("promote")))
