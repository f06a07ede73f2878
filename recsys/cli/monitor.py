"""``recsys monitor``: PD between served replicas, online (TensorBoard + Prometheus + alerts) or as a gate.

    recsys monitor --replica=127.0.0.1:8500/ranker:stable --replica=127.0.0.1:8500/ranker:canary \\
        --rows=eval.jsonl --logdir=/tmp/pd --metrics_port=9100
    recsys monitor --check --max_relative_pd=0.05 --replica=... --replica=... --rows=eval.jsonl
      (exit 0: within thresholds; 1: a threshold crossed -- do not move the label; 2: error)
    recsys monitor --config job.yaml --set monitor.max_relative_pd=0.05   (settings under ``monitor:``)

Flags are generated from :class:`recsys.settings.monitor.MonitorSettings`; its threshold flags are
``recsys compare``'s and ``recsys promote``'s (:class:`serving.gate.Thresholds`). ``--max_churn`` is a
deprecated alias of ``--max_topk_churn``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING, Any

from recsys.cli import exits, gateflags
from recsys.cli.flagging import Flags
from recsys.settings.monitor import MonitorSettings

if TYPE_CHECKING:
    from serving.tools.monitor import MonitorConfig

SETTINGS = Flags(MonitorSettings, "monitor")


def monitor_config(s: MonitorSettings) -> MonitorConfig:
    """Settings -> the monitor's MonitorConfig (the one place flags meet it)."""
    from serving.tools.monitor import MonitorConfig

    gate = gateflags.with_deprecated_churn(s.thresholds().as_dict(), s.max_churn, "max_topk_churn", "monitor")
    return MonitorConfig(
        replicas=list(s.replica), rows=s.rows, row_format=s.format, request_log=s.request_log,
        batch_size=s.batch_size, window=s.window, evaluate_every=s.evaluate_every, k=s.k, group=s.group,
        logdir=s.logdir or None, signature_name=s.signature_name, output=s.output, qps=s.qps,
        thresholds=gateflags.make(gate), tls=s.client_tls(),
    )  # fmt: skip


def main(argv: list[str]) -> None:
    exits.no_arguments("monitor", argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = SETTINGS.load("monitor")  # --print_config and config errors: before TensorFlow loads
    from serving.prometheus import MetricsServer
    from serving.tools.monitor import Monitor

    config = monitor_config(settings)
    try:
        monitor = Monitor(config)
    except Exception as err:  # noqa: BLE001 - a bad replica or file is exit 2 with the reason
        print(f"recsys monitor: {err}", file=sys.stderr)
        sys.exit(2)
    metrics = (
        MetricsServer(monitor.metrics_text, settings.metrics_host, settings.metrics_port)
        if settings.metrics_port
        else None
    )
    try:
        if settings.check:
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

        def show(values: dict[str, Any]) -> None:
            print(json.dumps({k: v for k, v in values.items()}, sort_keys=True), flush=True)

        monitor.run(settings.max_requests, settings.duration, on_evaluate=show)
    finally:
        if metrics is not None:
            metrics.stop()
        monitor.close()
