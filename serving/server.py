"""The model server: version manager + batcher + gRPC (PredictionService, ModelService) + REST.

``ModelServer(ServerOptions(...)).start()`` loads the configured models, then serves; ``port=0`` /
``rest_api_port=0`` pick free ports (read back from ``.port`` / ``.rest_port``), ``rest_api_port=None``
disables REST. The CLI ``recsys serve`` maps TF Serving's flags onto these options.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging

import grpc
import tensorflow as tf
from prometheus_client import CollectorRegistry
from tensorflow_serving.config import model_server_config_pb2

from serving import codec, grpc_service, inference, prometheus
from serving.admission import DEFAULT_MAX_INFLIGHT_BYTES, InFlightBytes
from serving.batching import Batcher, BatchingParameters
from serving.manager import ModelManager
from serving.reload_policy import ReloadPolicy
from serving.request import ServingCore
from serving.rest import DEFAULT_MAX_BODY_BYTES, RestServer
from serving.shadow import Shadow, ShadowConfig

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ServerOptions:
    """Everything the server needs; field names follow TF Serving's flags where one exists."""

    models: list[model_server_config_pb2.ModelConfig]
    host: str = "127.0.0.1"
    port: int = 0
    rest_api_port: int | None = None
    file_system_poll_wait_seconds: float = 1.0
    batching: BatchingParameters | None = None
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 1
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    grpc_max_threads: int = 64
    max_receive_message_bytes: int = 64 << 20
    grpc_channel_arguments: str = ""  # TF Serving's "key=value,key=value"; overrides the line above
    max_tensor_elements: int = codec.DEFAULT_MAX_ELEMENTS
    max_request_elements: int = inference.DEFAULT_MAX_REQUEST_ELEMENTS  # all inputs of one request
    max_decoded_request_bytes: int = inference.DEFAULT_MAX_DECODED_BYTES
    max_inflight_decoded_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES  # all requests in progress together
    max_rest_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    require_compatible_signatures: bool = False
    max_num_load_retries: int = 5
    load_retry_interval_seconds: float = 60.0
    ssl_cert_file: str = ""
    ssl_key_file: str = ""
    ssl_client_ca: str = ""  # PEM CA bundle: clients must present a certificate it signed (mutual TLS)
    allow_config_reload: bool = False  # ModelService.HandleReloadConfigRequest (off: PERMISSION_DENIED)
    allowed_model_roots: tuple[str, ...] = ()  # reloaded base paths must lie under one; () = startup roots
    rest_max_connections: int = 256  # open REST connections; more are answered 503 and closed
    rest_idle_timeout_seconds: float = 30.0  # a REST connection silent this long (TLS handshake too) closes
    shadow: ShadowConfig | None = None
    request_log_file: str = ""  # PredictionLog TFRecords of sampled Predict requests
    request_log_sample_rate: float = 0.01
    request_log_max_records: int = 0


def parse_channel_arguments(text: str) -> list[tuple[str, int | str]]:
    """TF Serving's ``--grpc_channel_arguments``: "k=v,k=v"; integer values are passed as integers."""
    out: list[tuple[str, int | str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--grpc_channel_arguments: expected key=value, got {item!r}")
        try:
            out.append((key, int(value)))
        except ValueError:
            out.append((key, value))
    return out


class ModelServer:
    """Owns the manager, batcher, gRPC server and REST server of one process."""

    def __init__(self, options: ServerOptions):
        self.options = options
        session_config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=options.tensorflow_intra_op_parallelism,
            inter_op_parallelism_threads=options.tensorflow_inter_op_parallelism,
        )
        self.manager = ModelManager(
            options.models,
            options.file_system_poll_wait_seconds,
            session_config,
            enable_warmup=options.enable_model_warmup,
            warmup_iterations=options.num_request_iterations_for_warmup,
            require_compatible_signatures=options.require_compatible_signatures,
            max_num_load_retries=options.max_num_load_retries,
            load_retry_interval_seconds=options.load_retry_interval_seconds,
        )
        self.batcher = Batcher(options.batching) if options.batching is not None else None
        self.registry = CollectorRegistry(auto_describe=False)  # per server: several may share a process
        self.shadow = None
        if options.shadow is not None:
            self.shadow = Shadow(self.manager, options.shadow)
        request_log = None
        if options.request_log_file:
            from serving.requestlog import RequestLogger

            request_log = RequestLogger(
                options.request_log_file, options.request_log_sample_rate, options.request_log_max_records
            )
        # the request path, with its observers (shadow mirror, request log) given at construction
        self.core = ServingCore(
            self.manager,
            self.batcher,
            inference.RequestLimits(
                options.max_tensor_elements, options.max_request_elements, options.max_decoded_request_bytes
            ),
            self.registry,
            shadow=self.shadow,
            request_log=request_log,
            in_flight=InFlightBytes(options.max_inflight_decoded_bytes),
            reload_policy=ReloadPolicy.for_models(
                options.allow_config_reload, tuple(options.allowed_model_roots), options.models
            ),
        )
        self.registry.register(prometheus.Collect(self.collect))
        self.grpc_server: grpc.Server | None = None
        self.rest: RestServer | None = None
        self.port = 0
        self.rest_port = 0

    def _credentials(self):
        """TLS for gRPC; with ``ssl_client_ca`` clients must present a certificate it signed."""
        with open(self.options.ssl_cert_file, "rb") as f:
            cert = f.read()
        with open(self.options.ssl_key_file, "rb") as f:
            key = f.read()
        ca = None
        if self.options.ssl_client_ca:
            with open(self.options.ssl_client_ca, "rb") as f:
                ca = f.read()
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
        )

    def _ssl_context(self):
        """TLS for REST (same certificate; client certificates required with ``ssl_client_ca``)."""
        import ssl

        o = self.options
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(o.ssl_cert_file, o.ssl_key_file)
        if o.ssl_client_ca:
            context.load_verify_locations(o.ssl_client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def start(self) -> ModelServer:
        o = self.options
        if o.ssl_client_ca and not o.ssl_cert_file:
            raise ValueError("--ssl_client_ca needs --ssl_cert_file and --ssl_key_file (mutual TLS)")
        self.manager.start()
        channel_options = dict(
            [
                ("grpc.max_receive_message_length", o.max_receive_message_bytes),
                ("grpc.max_send_message_length", o.max_receive_message_bytes),
                ("grpc.so_reuseport", 0),
            ]
            + parse_channel_arguments(o.grpc_channel_arguments)
        )
        address = f"{o.host}:{o.port}"
        tls = bool(o.ssl_cert_file)
        self.grpc_server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=o.grpc_max_threads, thread_name_prefix="grpc"),
            options=list(channel_options.items()),
            maximum_concurrent_rpcs=o.grpc_max_threads * 4,
        )
        grpc_service.add_services(self.grpc_server, self.core)
        try:
            self.port = (
                self.grpc_server.add_secure_port(address, self._credentials())
                if tls
                else self.grpc_server.add_insecure_port(address)
            )
        except RuntimeError:  # grpcio >= 1.5x raises instead of returning 0
            self.port = 0
        if self.port == 0:
            self.stop(grace=0)
            raise OSError(
                f"could not bind the gRPC port {address} (--port): it is in use by another process "
                "or not allowed; pick another --port (0 picks a free one)"
            )
        self.grpc_server.start()
        if o.rest_api_port is not None:
            ssl_context = self._ssl_context() if tls else None
            try:
                self.rest = RestServer(
                    self.core, o.host, o.rest_api_port, self.metrics_text, o.max_rest_body_bytes, ssl_context,
                    o.rest_max_connections, o.rest_idle_timeout_seconds,
                )
            except OSError as err:
                self.stop(grace=0)
                raise OSError(
                    f"could not bind the REST port {o.host}:{o.rest_api_port} (--rest_api_port): "
                    f"{err.strerror or err}; pick another --rest_api_port"
                ) from err
            self.rest.start()
            self.rest_port = self.rest.port
        log.info(
            "serving gRPC on %s:%d%s",
            o.host,
            self.port,
            f", REST on {o.host}:{self.rest_port}" if self.rest else "",
        )
        return self

    def batch_stats(self) -> tuple[int, int]:
        """(model calls, requests) made through the batcher."""
        return (self.batcher.batches_run, self.batcher.tasks_run) if self.batcher else (0, 0)

    def collect(self):
        """Families read at scrape time: loaded versions, batcher calls, the shadow's PD."""
        views = [(name, self.manager.view(name)) for name in self.manager.model_names()]
        yield prometheus.gauge(
            "recsys_serving_model_versions",
            "loaded (available) versions per model",
            [
                ({"model": name, "version": str(v)}, 1.0)
                for name, view in views
                if view is not None  # a model removed since model_names()
                for v in sorted(view.servables)
            ],
        )
        if self.batcher is not None:
            yield prometheus.counter(
                "recsys_serving_batches_total",
                "model calls made by the batcher",
                [({}, self.batcher.batches_run)],
            )
        if self.shadow is not None:
            yield from self.shadow.collect()

    def metrics_text(self) -> str:
        """TF Serving's request metrics, ours, loaded versions and shadow PD (Prometheus text)."""
        return prometheus.render(self.registry)

    def stop(self, grace: float = 1.0) -> None:
        if self.rest is not None:
            self.rest.stop()
        if self.grpc_server is not None:
            self.grpc_server.stop(grace).wait()
        if self.shadow is not None:
            self.shadow.stop()
        if self.core.request_log is not None:
            self.core.request_log.close()
        if self.batcher is not None:
            self.batcher.stop()
        self.manager.stop()

    def wait(self) -> None:
        if self.grpc_server is not None:
            self.grpc_server.wait_for_termination()
