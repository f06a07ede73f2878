"""Prometheus metrics through ``prometheus_client``: per-object registries and a tiny HTTP endpoint.

Every server, monitor and shadow gets its own :class:`~prometheus_client.CollectorRegistry` (never the
global one), so several can run in one process. Values read at scrape time (PD of the last window,
loaded versions) come from :class:`Collect`, which calls a function yielding metric families.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as CONTENT_TYPE
from prometheus_client.registry import Collector


class Collect(Collector):
    """A collector whose families come from ``fn()`` at every scrape."""

    def __init__(self, fn: Callable[[], Iterable[Metric]]):
        self._fn = fn

    def collect(self) -> Iterator[Metric]:
        yield from self._fn()


def registry(*sources: Callable[[], Iterable[Metric]]) -> CollectorRegistry:
    """A fresh registry holding one :class:`Collect` per source."""
    reg = CollectorRegistry(auto_describe=False)
    for source in sources:
        reg.register(Collect(source))
    return reg


def render(reg: CollectorRegistry) -> str:
    """The registry in Prometheus text format."""
    return generate_latest(reg).decode()


def gauge(name: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> GaugeMetricFamily:
    """A gauge family from (labels, value) pairs (all with the same label names)."""
    samples = list(samples)
    family = GaugeMetricFamily(name, help_text, labels=sorted(samples[0][0]) if samples else [])
    for labels, value in samples:
        family.add_metric([str(labels[k]) for k in sorted(labels)], float(value))
    return family


def counter(
    name: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]
) -> CounterMetricFamily:
    """A counter family (``name`` ends in ``_total``, as exposed) from (labels, value) pairs."""
    samples = list(samples)
    family = CounterMetricFamily(name, help_text, labels=sorted(samples[0][0]) if samples else [])
    for labels, value in samples:
        family.add_metric([str(labels[k]) for k in sorted(labels)], float(value))
    return family


class MetricsServer:
    """Serves ``render()`` at ``/metrics`` (and ``/``) on ``host:port`` (0 picks a free port)."""

    def __init__(self, render: Callable[[], str], host: str = "127.0.0.1", port: int = 0):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path.split("?")[0] not in ("/", "/metrics"):
                    self.send_error(404)
                    return
                body = render().encode()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
