"""``recsys query`` settings: which server and model, which rows (``query:`` in a config file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipelines.typed import setting
from recsys.settings.tls import ClientTLSSettings

RowFormat = Literal["auto", "jsonl", "csv", "criteo"]


@dataclass(frozen=True)
class QuerySettings(ClientTLSSettings):
    """One client run: rows in, one prediction line per row out."""

    server: str = setting("127.0.0.1:8500", "host:port of the gRPC (or with --rest, REST) API")
    rest: bool = setting(False, "use the REST API instead of gRPC")
    model_name: str = setting("default", "model to query")
    version: int = setting(0, "model version (0: the latest)")
    label: str = setting("", "version label (instead of --version)")
    signature_name: str = setting("", "signature (default serving_default)")
    rows: str = setting("", "file of rows (required; '-' reads JSON lines from stdin)")
    format: RowFormat = setting("auto", "format of --rows")
    batch_size: int = setting(256, "rows per request")
    output: str = setting("", "print only this output (default: all outputs)")
    timeout: float = setting(30.0, "per-request deadline in seconds")

    def __post_init__(self) -> None:
        self.check_tls()
        if not self.rows:
            raise ValueError("rows is required (a file of rows, or '-' for JSON lines on stdin)")
        if self.version < 0:
            raise ValueError(f"version must be >= 0, got {self.version}")
        if self.version and self.label:
            raise ValueError(f"give version or label, not both (got {self.version} and {self.label!r})")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {self.timeout}")

    def replica(self) -> str:
        """The replica address ``serving.tools.client.Replica.parse`` takes: [http://]host:port/model[@v|:l]."""
        target = self.model_name + (f"@{self.version}" if self.version else "") + (
            f":{self.label}" if self.label else "")
        return ("http://" if self.rest else "") + f"{self.server}/{target}"
