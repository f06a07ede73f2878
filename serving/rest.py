"""TF Serving's REST API on stdlib ``http.server``: status, metadata, :predict, :classify, :regress.

Paths: ``/v1/models/<name>[/versions/<v> | /labels/<l>][/metadata | :predict | :classify | :regress]``,
plus ``/monitoring/prometheus/metrics``. Errors are ``{"error": "<message>"}`` with TF Serving's HTTP
status for the canonical code (400 invalid argument / failed precondition, 404 not found, ...).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    input_pb2,
    model_pb2,
    regression_pb2,
)

from serving import jsonparse, prometheus, restjson
from serving.errors import ServingError, invalid
from serving.request import ServingCore

log = logging.getLogger(__name__)
_ROUTE = re.compile(
    r"^/v1/models/([^/:]+)(?:/versions/([0-9]+)|/labels/([^/:]+))?"
    r"(?:(/metadata)|:(predict|classify|regress))?/?$"
)
DEFAULT_MAX_BODY_BYTES = 64 << 20
_DRAIN_MAX_BYTES = 8 << 20  # bodies above the limit but below this are read (and dropped) before 413
_DRAIN_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_IDLE_TIMEOUT_SECONDS = 30.0
_METADATA_VALUES = 64  # JSON values of a body that are not tensor values ("signature_name", ...)


def _decode_arg(text: str, what: str) -> str:
    """A percent-encoded path segment (as TF Serving decodes model names and labels)."""
    try:
        return urllib.parse.unquote_to_bytes(text.encode("latin-1")).decode("utf-8")
    except (UnicodeError, ValueError):
        raise invalid(f"Failed to decode {what}: {text}") from None


def _to_json(message) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "recsys-serving"
    core: ServingCore
    _headers_buffer: list[bytes]  # BaseHTTPRequestHandler's pending header lines (not in typeshed)
    metrics_text = None  # callable -> str (Prometheus exposition), set by the server
    max_body_bytes = DEFAULT_MAX_BODY_BYTES

    def log_message(self, fmt, *args):  # quiet: one line per request would dominate the CPU
        log.debug("%s - " + fmt, self.address_string(), *args)

    def _send(self, status: int, payload, content_type: str = "application/json") -> None:
        body = (
            payload
            if isinstance(payload, bytes)
            else (json.dumps(payload, indent=None, separators=(",", ":")) + "\n").encode()
        )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # headers and body in one write: two small writes meet delayed ACKs (~40 ms per request)
        self._headers_buffer.append(b"\r\n" + (b"" if self.command == "HEAD" else body))
        self.flush_headers()

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": message})

    def do_GET(self):  # noqa: N802
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors, as JSON; no 5xx for what a client sent.

        An unknown method (http.server's 501) is routed like TF Serving routes it: 400 ``Malformed
        request`` under /v1/, 404 elsewhere. An unsupported HTTP version (505) becomes 400.
        """
        if code == HTTPStatus.NOT_IMPLEMENTED and self.command and self.path:
            self._dispatch(self.command)
            return
        if code >= 500:
            code = HTTPStatus.BAD_REQUEST
        self.close_connection = True
        if self.command is None:  # the request line did not parse: http.server's page, with a status line
            self.request_version = "HTTP/1.0"
            super().send_error(code, message, explain)
            return
        self._error(int(code), message or HTTPStatus(code).phrase)

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":  # no headers, no status line: nothing TF Serving speaks
            self.command = None  # type: ignore[assignment]  # http.server's own "no request" marker
            self.send_error(HTTPStatus.BAD_REQUEST, "HTTP/0.9 requests are not supported")
            return False
        return True

    def _dispatch(self, method: str) -> None:
        try:
            raw = self._read_body()
        except ServingError as err:
            if not err.body_consumed:
                self.close_connection = True  # the body's end is unknown: the connection cannot be reused
            self._error(err.http_status, err.message)
            return
        try:
            self._route(method, raw)
        except ServingError as err:
            self._error(err.http_status, err.message)
        except Exception as err:  # noqa: BLE001 - never let a request take the server down
            log.exception("internal error on %s %s", method, self.path)
            self._error(500, f"{type(err).__name__}: {err}")

    def _read_body(self) -> bytes:
        """The request body (Content-Length or chunked), refused above ``max_body_bytes``."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise invalid("invalid Content-Length") from None
        if length < 0:
            raise invalid("invalid Content-Length")
        try:
            self._check_size(length)
        except ServingError as err:
            # Read a moderately large body to its end before answering 413: closing a socket with
            # unread data resets the connection, and the client may lose the answer.
            err.body_consumed = length <= _DRAIN_MAX_BYTES and self._discard(length)
            raise
        return self.rfile.read(length)

    def _discard(self, length: int) -> bool:
        """Read and drop ``length`` body bytes (True), unless the client stalls (False)."""
        self.connection.settimeout(_DRAIN_TIMEOUT_SECONDS)
        try:
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 16))
                if not chunk:
                    return False
                length -= len(chunk)
            return True
        except OSError:
            return False
        finally:
            self.connection.settimeout(self.timeout)

    def _check_size(self, length: int) -> None:
        if length > self.max_body_bytes:
            raise ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request body of {length} bytes exceeds the limit of {self.max_body_bytes}",
                http_status=413,
            )

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise invalid("invalid chunked encoding") from None
            if size < 0:
                raise invalid("invalid chunked encoding")
            total += size
            self._check_size(total)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            if self.rfile.readline(1024) not in (b"\r\n", b"\n"):
                raise invalid("invalid chunked encoding")

    def _route(self, method: str, raw: bytes) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/monitoring/prometheus/metrics" and method == "GET" and self.metrics_text:
            self._send(200, self.metrics_text().encode(), prometheus.CONTENT_TYPE)
            return
        m = _ROUTE.match(path) if method in ("GET", "POST") else None
        verb = m.group(5) if m else None
        if m is None or (method == "GET") != (verb is None):
            # TF Serving: anything under /v1/ it cannot route is INVALID_ARGUMENT; other paths 404
            status = 400 if path.lower().startswith("/v1/") else 404
            self._error(status, f"Malformed request: {method} {self.path}")
            return
        name, version, label, meta = m.group(1), m.group(2), m.group(3), m.group(4)
        spec = model_pb2.ModelSpec(name=_decode_arg(name, "model name"))
        if version is not None:
            if int(version) >= 1 << 63:
                raise invalid(f"Failed to convert version: {version} to numeric.")
            spec.version.value = int(version)
        elif label is not None:
            spec.version_label = _decode_arg(label, "model version label")
        if method == "GET":
            if meta:
                request = get_model_metadata_pb2.GetModelMetadataRequest(
                    model_spec=spec, metadata_field=["signature_def"]
                )
                self._send(200, _to_json(self.core.metadata(request)))
            else:
                request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
                self._send(200, _to_json(self.core.status(request)))
            return
        # a body's values are counted before it is parsed: over the cap it never becomes Python objects
        body = jsonparse.loads(raw, max_values=self.core.limits.max_request_elements + _METADATA_VALUES)
        if not isinstance(body, dict):
            raise invalid("JSON Value: request body must be a JSON object")
        sig_name = body.get("signature_name", "")
        if not isinstance(sig_name, str):
            raise invalid("'signature_name' must be a string")
        spec.signature_name = sig_name
        if verb == "predict":
            signature = self.core.signature_of(spec)
            inputs, rows = restjson.parse_predict(body, signature)
            _, _, out = self.core.predict_arrays(spec, inputs)
            self._send(200, restjson.format_predict(out, rows))
            return
        examples = restjson.examples_from_json(body)
        request_input = input_pb2.Input()
        request_input.example_list.examples.extend(examples)
        if verb == "classify":
            response = self.core.classify(
                classification_pb2.ClassificationRequest(model_spec=spec, input=request_input), "REST"
            )
            results = [
                [[c.label, c.score] if c.label else c.score for c in row.classes]
                for row in response.result.classifications
            ]
        else:
            response = self.core.regress(
                regression_pb2.RegressionRequest(model_spec=spec, input=request_input), "REST"
            )
            results = [r.value for r in response.result.regressions]
        self._send(200, {"results": results})


class _Server(ThreadingHTTPServer):
    """One thread per connection, at most ``max_connections``; TLS handshakes happen in that thread.

    The accept loop only accepts: a client that connects and sends nothing (or stalls in the TLS
    handshake) holds its own thread until ``idle_timeout`` and never the loop, so it cannot block other
    clients or the metrics URL. Connections beyond the cap are answered 503 (plain HTTP) and closed.
    """

    daemon_threads = True

    def __init__(self, address, handler, ssl_context, max_connections: int, idle_timeout: float):
        super().__init__(address, handler)
        self.ssl_context = ssl_context
        self.idle_timeout = idle_timeout
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            log.warning("REST: %s refused, every connection slot is in use", client_address[0])
            if self.ssl_context is None:
                try:
                    request.settimeout(1.0)
                    request.sendall(_BUSY)
                except OSError:
                    pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)  # starts the connection's thread
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request, client_address):
        request.settimeout(self.idle_timeout)  # bounds the TLS handshake and every read
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (OSError, ValueError) as err:  # a failed or timed-out handshake (or no client cert)
            log.debug("REST: TLS handshake with %s failed: %s", client_address[0], err)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


_BUSY_BODY = b'{"error":"too many open connections; retry later"}\n'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    + f"Content-Length: {len(_BUSY_BODY)}\r\n\r\n".encode()
    + _BUSY_BODY
)


class RestServer:
    """A threading HTTP server for the REST API; ``port`` is the bound port (0 picks a free one)."""

    def __init__(
        self,
        core: ServingCore,
        host: str = "127.0.0.1",
        port: int = 0,
        metrics_text=None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        ssl_context=None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        idle_timeout_seconds: float = DEFAULT_IDLE_TIMEOUT_SECONDS,
    ):
        handler = type(
            "Handler",
            (_Handler,),
            {
                "core": core,
                "metrics_text": staticmethod(metrics_text) if metrics_text else None,
                "max_body_bytes": max_body_bytes,
                "timeout": idle_timeout_seconds,  # StreamRequestHandler: a silent connection is closed
            },
        )
        self.httpd = _Server((host, port), handler, ssl_context, max_connections, idle_timeout_seconds)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="rest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
