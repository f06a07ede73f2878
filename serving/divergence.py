"""Online prediction difference over a sliding window of rows, shared by the monitor and shadow mode.

Each update adds the K replicas' predictions for the same rows (one request = one query for top-k
churn). ``evaluate()`` computes :func:`serving.pd.pairwise_pd`, :func:`serving.churn.topk_churn` and
:func:`serving.churn.pairwise_flip_rate` over the last ``window`` rows, writes them with the study's
TensorBoard tags (``pd/<group>/...``), keeps them for the Prometheus endpoint, and reports which
:class:`serving.gate.Thresholds` were crossed.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any

import numpy as np

from serving import prometheus, summaries
from serving.churn import pairwise_flip_rate, topk_churn
from serving.gate import Thresholds
from serving.pd import PDSummary, pairwise_pd

log = logging.getLogger(__name__)


class WindowedPD:
    """The last ``window`` rows of K aligned prediction streams and their PD."""

    def __init__(
        self,
        group: str,
        num_replicas: int,
        window: int = 10000,
        k: int = 10,
        logdir: str | None = None,
        thresholds: Thresholds | None = None,
        replica_names: list[str] | None = None,
    ):
        if num_replicas < 2:
            raise ValueError(f"PD needs at least 2 replicas, got {num_replicas}")
        self.group = group
        self.num_replicas = num_replicas
        self.window = window
        self.k = k
        self.thresholds = thresholds or Thresholds()
        self.replica_names = replica_names or [str(i) for i in range(num_replicas)]
        self._chunks: collections.deque = collections.deque()  # (preds [K, n], query id)
        self._rows = 0
        self._next_query = 0
        self.rows_seen = 0
        self.evaluations = 0
        self.alerts = 0
        self.last: dict[str, float] = {}
        self.last_summary: PDSummary | None = None
        self._lock = threading.Lock()
        self._writer = None
        if logdir:
            import tensorflow as tf

            summaries.write_layout(logdir, [group])
            self._writer = tf.summary.create_file_writer(logdir)

    def add(self, predictions: list[np.ndarray]) -> None:
        """One request's predictions from each replica (same rows, same order)."""
        arrays = [np.asarray(p, dtype=np.float64).reshape(-1) for p in predictions]
        if len(arrays) != self.num_replicas or len({a.size for a in arrays}) != 1:
            raise ValueError(
                f"expected {self.num_replicas} aligned prediction arrays, got sizes "
                f"{[a.size for a in arrays]}"
            )
        stacked = np.stack(arrays)
        with self._lock:
            self._chunks.append((stacked, self._next_query))
            self._next_query += 1
            self._rows += stacked.shape[1]
            self.rows_seen += stacked.shape[1]
            while self._chunks and self._rows - self._chunks[0][0].shape[1] >= self.window:
                self._rows -= self._chunks.popleft()[0].shape[1]

    def evaluate(self, step: int | None = None) -> dict[str, Any]:
        """PD of the current window: write TensorBoard, update the gauges, alert; returns the values
        (floats, and ``alerts``: the crossed thresholds; ``error`` instead when PD is undefined)."""
        with self._lock:
            chunks = list(self._chunks)
        if not chunks:
            return {}
        preds = np.concatenate([c for c, _ in chunks], axis=1)[:, -self.window :]
        qids = np.concatenate([np.full(c.shape[1], q) for c, q in chunks])[-self.window :]
        try:
            summary = pairwise_pd(list(preds))
            churn = topk_churn(list(preds), qids, k=self.k)
            flips = pairwise_flip_rate(list(preds), self.thresholds.flip_threshold)
        except ValueError as err:  # NaN or negative outputs (logits?): PD is undefined, say so
            log.error("PD of group %s is undefined for this window: %s", self.group, err)
            return {"error": str(err), "alerts": []}
        values = {
            "relative": summary.relative.mean,
            "absolute": summary.absolute.mean,
            "share_above": summary.share_above.mean,
            "topk_churn": churn,
            "flip_rate": flips,
            "relative_max": summary.relative.max,
            "rows": float(preds.shape[1]),
        }
        for name, stats in summary.percentiles.items():
            values[f"relative_{name}"] = stats.mean
        step = self.rows_seen if step is None else step
        if self._writer is not None:
            import tensorflow as tf

            summaries.write_pd(self._writer, self.group, step, summary)
            with self._writer.as_default():
                tag = f"pd/{summaries.group_tag(self.group)}"
                tf.summary.scalar(f"{tag}/topk_churn", churn, step=step)
                tf.summary.scalar(f"{tag}/flip_rate", flips, step=step)
            self._writer.flush()
        crossed = self.thresholds.crossed(
            {"relative_pd": values["relative"], "absolute_pd": values["absolute"], **values})
        with self._lock:
            self.last = dict(values)  # the floats only: the gauges read them
            self.last_summary = summary
            self.evaluations += 1
            if crossed:
                self.alerts += 1
        if crossed:
            log.warning(
                "ALERT replica divergence group=%s rows=%d: %s",
                self.group,
                preds.shape[1],
                ", ".join(crossed),
            )
        return {**values, "alerts": crossed}

    def collect(self):
        """Prometheus families for the last evaluation (label: group)."""
        labels = {"group": self.group}
        last = dict(self.last)
        for key, help_text in [
            ("relative", "relative PD (mean over replica pairs)"),
            ("absolute", "absolute PD (mean over replica pairs)"),
            ("share_above", "share of rows with relative difference above 10%"),
            ("topk_churn", "top-k churn between replicas (mean over pairs)"),
            ("flip_rate", "share of rows whose decision flips between replicas (mean over pairs)"),
            ("relative_max", "largest relative PD over replica pairs"),
        ]:
            samples = [(labels, last[key])] if key in last else []
            yield prometheus.gauge(f"recsys_pd_{key}", help_text, samples)
        yield prometheus.gauge(
            "recsys_pd_relative_percentile",
            "percentile of per-row relative difference",
            [
                ({**labels, "q": k[len("relative_p") :]}, v)
                for k, v in last.items()
                if k.startswith("relative_p")
            ],
        )
        rows = last.get("rows", 0.0)
        yield prometheus.gauge("recsys_pd_window_rows", "rows in the PD window", [(labels, rows)])
        yield prometheus.counter("recsys_pd_rows_total", "rows compared", [(labels, self.rows_seen)])
        yield prometheus.counter(
            "recsys_pd_alerts_total", "window evaluations that crossed a threshold", [(labels, self.alerts)]
        )

    def metrics_text(self) -> str:
        return prometheus.render(prometheus.registry(self.collect))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
