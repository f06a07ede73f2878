"""The server's request metrics, named and bucketed as TF Serving's own (``:tensorflow:serving:*``).

TF Serving counts ``/tensorflow/serving/request_count`` (model_name, status) and samples
``/tensorflow/serving/request_latency`` (model_name, API, entrypoint) in microseconds over
exponential buckets 10 * 1.8^i, i < 33; its Prometheus exporter writes ``/`` as ``:``. Ours add the
signature and version to the latency labels; prometheus_client exposes counters with ``_total``.
"""

from __future__ import annotations

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))
# our method names -> TF Serving's API label
API = {
    "predict": "Predict",
    "classify": "Classify",
    "regress": "Regress",
    "multi_inference": "MultiInference",
}


class RequestMetrics:
    """Request counts and latency histograms on one server's registry."""

    def __init__(self, registry: CollectorRegistry):
        self.request_count = Counter(
            ":tensorflow:serving:request_count",
            "The total number of requests.",
            ["model_name", "status"],
            registry=registry,
        )
        self.request_latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint", "signature_name", "model_version"],
            buckets=LATENCY_BUCKETS_US,
            registry=registry,
        )
        self.requests = Counter(
            "recsys_serving_requests",
            "requests by method and status code",
            ["method", "code"],
            registry=registry,
        )
        self.seconds = Counter(
            "recsys_serving_request_seconds",
            "summed request latency by method",
            ["method"],
            registry=registry,
        )

    def record(
        self,
        method: str,
        code: grpc.StatusCode,
        seconds: float,
        entrypoint: str,
        model_name: str = "",
        signature_name: str = "",
        version: int | None = None,
    ) -> None:
        """One finished request (inference APIs also by model, signature and version)."""
        self.requests.labels(method, code.name).inc()
        self.seconds.labels(method).inc(seconds)
        api = API.get(method)
        if api and model_name:
            self.request_count.labels(model_name, code.name).inc()
            self.request_latency.labels(
                model_name, api, entrypoint, signature_name, "" if version is None else str(version)
            ).observe(seconds * 1e6)
