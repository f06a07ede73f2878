"""``recsys promote`` settings, one field per flag (``promote:`` in a config file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipelines.typed import setting
from recsys.settings.gate import GateSettings
from recsys.settings.tls import ClientTLSSettings


@dataclass(frozen=True)
class PromoteSettings(GateSettings, ClientTLSSettings):
    """Which label moves to which on which servers, the rows and limits of the PD gate, where to log."""

    server: tuple[str, ...] = setting((), "HOST:PORT of the model server (gRPC); repeat for replicas: the "
                                      "gate runs on the first, the label moves on all", multi=True)
    model: str = setting("", "model name in the server's config (required)")
    candidate: str = setting("canary", "label whose version is promoted")
    target: str = setting("stable", "label that is moved to the candidate's version")
    rows: str = setting("", "rows for the PD gate: JSON lines, CSV with header, or Criteo TSV")
    format: Literal["auto", "jsonl", "csv", "criteo"] = setting("auto", "format of --rows")
    model_config_file: str = setting("", "the server's models.config (ModelServerConfig text proto), edited "
                                     "atomically when the label moves (required)")
    max_churn: float | None = setting(None, "deprecated alias of --max_topk_churn")
    batch_size: int = setting(64, "rows per request (one request is one query for top-k churn)")
    k: int = setting(10, "k of top-k churn")
    signature_name: str = setting("", "signature to call (default serving_default)")
    output: str = setting("", "output compared (default: the only output, or probability/scores)")
    dry_run: bool = setting(False, "decide and print, change nothing")
    rollback: bool = setting(False, "move --target back to its version before the last promotion")
    history_file: str = setting("", "promotion history (default <model_config_file>.history.json)")
    log_file: str = setting("", "append every decision here as a JSON line")
    timeout: float = setting(30.0, "seconds per RPC")

    def __post_init__(self) -> None:
        self.check_tls()
        if not self.model or not self.model_config_file:
            raise ValueError("model and model_config_file are required")
        if self.k < 1 or self.batch_size < 1:
            raise ValueError(f"k and batch_size must be >= 1, got {self.k} and {self.batch_size}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {self.timeout}")
