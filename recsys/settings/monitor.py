"""``recsys monitor`` settings, one field per flag (``monitor:`` in a config file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipelines.typed import setting
from recsys.settings.gate import GateSettings, gate_values
from recsys.settings.tls import ClientTLSSettings
from serving.gate import Thresholds

RowFormat = Literal["auto", "jsonl", "csv", "criteo"]


@dataclass(frozen=True)
class MonitorSettings(GateSettings, ClientTLSSettings):
    """The monitor's settings; :func:`recsys.cli.monitor.monitor_config` maps them to MonitorConfig."""

    replica: tuple[str, ...] = setting((), "[http://]host:port/model[@version|:label]; repeat (>= 2)",
                                       multi=True)
    rows: str = setting("", "rows to send: JSON lines, CSV with header, or Criteo TSV")
    format: RowFormat = setting("auto", "format of --rows")
    request_log: str = setting("", "PredictionLog TFRecord to replay instead of --rows")
    batch_size: int = setting(64, "rows per request (one request is one query for top-k churn)")
    window: int = setting(10000, "rows in the sliding PD window")
    evaluate_every: int = setting(20, "requests between PD evaluations")
    k: int = setting(10, "k of top-k churn")
    group: str = setting("replicas", "group name in the TensorBoard tags (pd/<group>/...)")
    logdir: str = setting("", "TensorBoard directory (same tags and layout as the study)")
    metrics_port: int = setting(0, "serve Prometheus metrics on this port (0: off)")
    metrics_host: str = setting("127.0.0.1", "address for the metrics endpoint")
    signature_name: str = setting("", "signature to call (default serving_default)")
    output: str = setting("", "output compared (default: the only output, or probability/scores)")
    max_churn: float | None = setting(None, "deprecated alias of --max_topk_churn")
    check: bool = setting(False, "one pass over the rows, print the PD as JSON, exit 1 if a threshold is "
                          "crossed (the gate before moving a version label)")
    max_requests: int = setting(0, "stop after this many requests (continuous mode; 0: no limit)")
    duration: float = setting(0.0, "stop after this many seconds (continuous mode; 0: no limit)")
    qps: float = setting(0.0, "request rate limit in continuous mode (0: unlimited)")

    def thresholds(self) -> Thresholds:
        """The gate fields as :class:`serving.gate.Thresholds` (``max_churn`` not mapped: the CLI does)."""
        return Thresholds(**gate_values(self))

    def __post_init__(self) -> None:
        self.check_tls()
        for name in ("batch_size", "window", "evaluate_every", "k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_requests", "duration", "qps", "metrics_port"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
