"""The replica-divergence monitor: the same requests to K replicas, PD online over a sliding window.

Replicas are ``host:port/model[@version|:label]`` (different models, versions or labels, on one or
several servers). Each batch of rows is one Predict request sent to every replica concurrently; the
predictions feed a :class:`~serving.divergence.WindowedPD` (TensorBoard with the study's tags,
Prometheus gauges, ALERT log lines). ``check()`` is the one-shot gate: every row once, PD over all
of them, and the thresholds crossed (the CLI exits non-zero then).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from serving import prometheus
from serving.divergence import WindowedPD
from serving.gate import Thresholds
from serving.tools import client as clients
from serving.tools.tls import PLAIN, ClientTLS

log = logging.getLogger(__name__)


@dataclasses.dataclass
class MonitorConfig:
    replicas: list[str]
    rows: str = ""  # JSON lines / CSV / Criteo TSV
    row_format: str = "auto"
    request_log: str = ""  # PredictionLog TFRecord (a captured request log or warm-up file)
    batch_size: int = 64  # rows per request (one request = one query for top-k churn)
    window: int = 10000
    evaluate_every: int = 20  # requests between evaluations (continuous mode)
    k: int = 10
    group: str = "replicas"
    logdir: str | None = None
    signature_name: str = ""
    output: str = ""
    thresholds: Thresholds = dataclasses.field(default_factory=Thresholds)
    timeout: float = 30.0
    qps: float = 0.0  # request rate limit in continuous mode (0 = as fast as replicas answer)
    tls: ClientTLS = PLAIN  # CA and client certificate for TLS / mutual-TLS servers


class Monitor:
    """Sends requests to the replicas and keeps the PD window; see the module docstring."""

    def __init__(self, config: MonitorConfig):
        if len(config.replicas) < 2:
            raise ValueError("the monitor needs at least two --replica")
        if bool(config.rows) == bool(config.request_log):
            raise ValueError("give exactly one of rows (a file of rows) or request_log")
        self.config = config
        self.replicas = [clients.Replica.parse(r, config.signature_name) for r in config.replicas]
        self.clients = [clients.connect(r, config.timeout, config.tls) for r in self.replicas]
        self.specs = [c.inputs(r.spec) for c, r in zip(self.clients, self.replicas, strict=True)]
        self.pd = WindowedPD(
            config.group,
            len(self.replicas),
            config.window,
            config.k,
            config.logdir,
            config.thresholds,
            [r.label for r in self.replicas],
        )
        self.requests = 0
        self.errors: dict[str, int] = collections.Counter()
        self._pool = concurrent.futures.ThreadPoolExecutor(len(self.replicas), thread_name_prefix="replica")

    def _requests(self) -> Iterator[list[dict[str, np.ndarray]]]:
        """Per request, the inputs for each replica (converted to each replica's signature dtypes)."""
        c = self.config
        if c.request_log:
            for inputs in clients.read_request_log(c.request_log):
                yield [inputs] * len(self.replicas)
            return
        for rows in clients.batches(clients.read_rows(c.rows, c.row_format), c.batch_size):
            yield [clients.rows_to_inputs(rows, spec) for spec in self.specs]

    def send(self, per_replica: list[dict[str, np.ndarray]]) -> list[np.ndarray] | None:
        """One request to every replica at once; None (and counted) if any replica failed."""
        futures = [
            self._pool.submit(cl.predict, r.spec, inputs)
            for cl, r, inputs in zip(self.clients, self.replicas, per_replica, strict=True)
        ]
        collected: list[np.ndarray] = []
        preds: list[np.ndarray] | None = collected
        for replica, future in zip(self.replicas, futures, strict=True):
            try:
                collected.append(
                    np.asarray(
                        clients.prediction_of(future.result(), self.config.output), dtype=np.float64
                    ).reshape(-1)
                )
            except Exception as err:  # noqa: BLE001 - a failing replica is counted, not fatal
                self.errors[replica.label] += 1
                log.warning("replica %s failed: %s", replica.label, err)
                preds = None
        self.requests += 1
        if preds is None or len({p.size for p in preds}) != 1:
            return None
        self.pd.add(preds)
        return preds

    def check(self) -> dict:
        """Every row once; PD over all of them (window grown to fit); the result with 'alerts'."""
        predictions = []
        for per_replica in self._requests():
            preds = self.send(per_replica)
            if preds is not None:
                predictions.append(preds)
        if not predictions:
            raise RuntimeError(f"no request succeeded on every replica (errors: {dict(self.errors)})")
        self.pd.window = max(self.pd.window, self.pd.rows_seen)
        values: dict[str, Any] = dict(self.pd.evaluate())
        if "error" in values:
            raise RuntimeError(f"PD is undefined for these predictions: {values['error']}")
        values["requests"] = self.requests
        values["errors"] = dict(self.errors)
        values["replicas"] = [r.label for r in self.replicas]
        return values

    def run(self, max_requests: int = 0, duration: float = 0.0, on_evaluate=None) -> None:
        """Continuous mode: cycle through the source, evaluating every ``evaluate_every`` requests."""
        start = time.monotonic()
        interval = 1.0 / self.config.qps if self.config.qps > 0 else 0.0
        sent = 0
        while True:
            sent_before = sent
            for per_replica in self._requests():
                if (max_requests and sent >= max_requests) or (
                    duration and time.monotonic() - start >= duration
                ):
                    break
                t0 = time.monotonic()
                self.send(per_replica)
                sent += 1
                if sent % self.config.evaluate_every == 0 and self.pd.rows_seen:
                    values = self.pd.evaluate()
                    if on_evaluate is not None:
                        on_evaluate(values)
                if interval:
                    time.sleep(max(0.0, interval - (time.monotonic() - t0)))
            else:
                if sent > sent_before:
                    continue  # the source is exhausted: start it again
            break
        if self.pd.rows_seen:
            values = self.pd.evaluate()
            if on_evaluate is not None:
                on_evaluate(values)

    def collect(self):
        """Prometheus families: requests sent, errors per replica, then the PD window's."""
        yield prometheus.counter(
            "recsys_monitor_requests_total", "requests sent to every replica",
            [({"group": self.config.group}, self.requests)],
        )
        yield prometheus.counter(
            "recsys_monitor_errors_total", "failed requests per replica",
            [({"replica": r.label}, self.errors.get(r.label, 0)) for r in self.replicas],
        )
        yield from self.pd.collect()

    def metrics_text(self) -> str:
        return prometheus.render(prometheus.registry(self.collect))

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        for c in self.clients:
            c.close()
        self.pd.close()
