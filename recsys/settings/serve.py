"""``recsys serve`` settings: TF Serving's flag names, one field each (``serve:`` in a config file)."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.typed import setting


@dataclass(frozen=True)
class ServeSettings:
    """The model server's settings; :func:`recsys.cli.serve.server_options` maps them to ServerOptions."""

    port: int = setting(8500, "gRPC port (0 picks a free port)")
    rest_api_port: int = setting(0, "REST API port; 0 disables REST (as in TF Serving)")
    host: str = setting("127.0.0.1", "address to bind (TF Serving binds all interfaces; use 0.0.0.0 in a "
                        "container)")
    model_name: str = setting("default", "name of the single model (without --model_config_file)")
    model_base_path: str = setting("", "directory holding <version>/saved_model.pb of that model")
    model_config_file: str = setting("", "ModelServerConfig text proto (model_config_list with version "
                                     "policies and version_labels); overrides --model_name/--model_base_path")
    model_config_file_poll_wait_seconds: float = setting(
        0.0, "re-read --model_config_file this often and apply changes (labels, policies, models); 0: read "
        "once")
    file_system_poll_wait_seconds: float = setting(1.0, "seconds between scans for new versions; 0 scans "
                                                   "once at start-up")
    enable_batching: bool = setting(False, "merge concurrent requests into one model call")
    batching_parameters_file: str = setting("", "BatchingParameters text proto (max_batch_size, "
                                            "batch_timeout_micros, num_batch_threads, max_enqueued_batches)")
    max_num_load_retries: int = setting(5, "times a failed version load is retried")
    load_retry_interval_micros: int = setting(60 * 1000 * 1000, "wait between load retries")
    enable_model_warmup: bool = setting(True, "replay assets.extra/tf_serving_warmup_requests on load")
    num_request_iterations_for_warmup: int = setting(1, "times each warm-up request is run")
    tensorflow_intra_op_parallelism: int = setting(0, "TF intra-op threads (0: TF decides)")
    tensorflow_inter_op_parallelism: int = setting(0, "TF inter-op threads (0: TF decides)")
    grpc_max_threads: int = setting(64, "gRPC worker threads")
    max_request_bytes: int = setting(64 << 20, "largest accepted gRPC message / REST body (larger: "
                                     "RESOURCE_EXHAUSTED / HTTP 413)")
    grpc_channel_arguments: str = setting("", "TF Serving's flag: comma-separated gRPC server arguments, "
                                          "e.g. grpc.max_receive_message_length=1048576 (overrides "
                                          "--max_request_bytes for gRPC)")
    rest_api_max_body_bytes: int | None = setting(None, "largest accepted REST body, larger gets HTTP 413 "
                                                  "(ours: TF Serving has no such limit); default "
                                                  "--max_request_bytes")
    max_request_elements: int = setting(1 << 22, "most values one Predict may decode, all inputs together, "
                                        "counted from the shapes it declares (larger: RESOURCE_EXHAUSTED / "
                                        "HTTP 413)")
    max_decoded_request_bytes: int = setting(64 << 20, "most bytes one Predict's inputs may take decoded")
    max_inflight_decoded_bytes: int = setting(512 << 20, "most decoded input bytes of all requests in "
                                              "progress together; more: RESOURCE_EXHAUSTED / HTTP 429")
    require_compatible_signatures: bool = setting(False, "refuse a new version whose signatures drop or "
                                                  "change the inputs of the version it replaces "
                                                  "(FAILED_PRECONDITION in status)")
    ssl_cert_file: str = setting("", "PEM server certificate: serve gRPC and REST over TLS")
    ssl_key_file: str = setting("", "PEM private key for --ssl_cert_file")
    ssl_client_ca: str = setting("", "PEM CA bundle: gRPC and REST clients must present a certificate it "
                                 "signed (mutual TLS; TF Serving's client_verify); needs --ssl_cert_file")
    allow_config_reload: bool = setting(False, "accept ModelService.HandleReloadConfigRequest (off: "
                                        "PERMISSION_DENIED); any client that reaches --port could change "
                                        "what is served")
    allowed_model_roots: str = setting("", "comma-separated directories a reloaded config's base paths must "
                                       "lie under (default: the parent directories of the startup models)")
    rest_max_connections: int = setting(256, "open REST connections; more are answered 503 and closed")
    rest_idle_timeout_seconds: float = setting(30.0, "close a REST connection (TLS handshake included) "
                                               "silent this long")
    request_log_file: str = setting("", "write sampled Predict requests here as PredictionLog TFRecords "
                                    "(replay them with recsys monitor --request_log)")
    request_log_sample_rate: float = setting(0.01, "share of Predict requests logged")
    request_log_max_records: int = setting(0, "stop logging after this many records (0: no limit)")
    shadow: str = setting("", "shadow mode: PRIMARY=TARGET mirrors Predict traffic of model PRIMARY to "
                          "TARGET (name[@version|:label]) and records PD, e.g. ranker=ranker:canary")
    shadow_sample_rate: float = setting(0.1, "share of primary Predict requests mirrored")
    shadow_window: int = setting(10000, "rows in the shadow PD sliding window")
    shadow_evaluate_every: int = setting(100, "mirrored requests between PD evaluations")
    shadow_logdir: str = setting("", "TensorBoard directory for the shadow PD (study tags)")
    shadow_max_relative_pd: float | None = setting(None, "log an ALERT when the shadow relative PD exceeds "
                                                   "this")

    def __post_init__(self) -> None:
        for name in ("port", "rest_api_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ValueError(f"{name} must be in [0, 65535], got {port}")
        for name in ("request_log_sample_rate", "shadow_sample_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("max_request_elements", "max_decoded_request_bytes", "max_inflight_decoded_bytes",
                     "rest_max_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.rest_idle_timeout_seconds <= 0:
            raise ValueError(f"rest_idle_timeout_seconds must be > 0, got {self.rest_idle_timeout_seconds}")
        if self.ssl_client_ca and not (self.ssl_cert_file and self.ssl_key_file):
            raise ValueError("ssl_client_ca needs ssl_cert_file and ssl_key_file (mutual TLS)")
        primary, _, target = self.shadow.partition("=")
        if self.shadow and not (primary and target):
            raise ValueError(f"shadow must be PRIMARY=TARGET, got {self.shadow!r}")
