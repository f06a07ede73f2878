"""``recsys serve``: the model server with TF Serving's gRPC and REST APIs and its flag names.

recsys serve --port=8500 --rest_api_port=8501 --model_name=ranker --model_base_path=/models/ranker
recsys serve --model_config_file=models.config --enable_batching --batching_parameters_file=batch.config
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("port", 8500, "gRPC port (0 picks a free port)")
flags.DEFINE_integer("rest_api_port", 0, "REST API port; 0 disables REST (as in TF Serving)")
flags.DEFINE_string(
    "host", "127.0.0.1", "address to bind (TF Serving binds all interfaces; use 0.0.0.0 in a container)"
)
flags.DEFINE_string("model_name", "default", "name of the single model (without --model_config_file)")
flags.DEFINE_string("model_base_path", "", "directory holding <version>/saved_model.pb of that model")
flags.DEFINE_string(
    "model_config_file",
    "",
    "ModelServerConfig text proto (model_config_list with "
    "version policies and version_labels); overrides --model_name/--model_base_path",
)
flags.DEFINE_float(
    "model_config_file_poll_wait_seconds",
    0.0,
    "re-read --model_config_file this often and apply changes (labels, policies, models); 0: read once",
)
flags.DEFINE_float(
    "file_system_poll_wait_seconds", 1.0, "seconds between scans for new versions; 0 scans once at start-up"
)
flags.DEFINE_bool("enable_batching", False, "merge concurrent requests into one model call")
flags.DEFINE_string(
    "batching_parameters_file",
    "",
    "BatchingParameters text proto (max_batch_size, "
    "batch_timeout_micros, num_batch_threads, max_enqueued_batches)",
)
flags.DEFINE_integer("max_num_load_retries", 5, "times a failed version load is retried")
flags.DEFINE_integer("load_retry_interval_micros", 60 * 1000 * 1000, "wait between load retries")
flags.DEFINE_bool("enable_model_warmup", True, "replay assets.extra/tf_serving_warmup_requests on load")
flags.DEFINE_integer("num_request_iterations_for_warmup", 1, "times each warm-up request is run")
flags.DEFINE_integer("tensorflow_intra_op_parallelism", 0, "TF intra-op threads (0: TF decides)")
flags.DEFINE_integer("tensorflow_inter_op_parallelism", 0, "TF inter-op threads (0: TF decides)")
flags.DEFINE_integer("grpc_max_threads", 64, "gRPC worker threads")
flags.DEFINE_integer(
    "max_request_bytes",
    64 << 20,
    "largest accepted gRPC message / REST body (larger: RESOURCE_EXHAUSTED / HTTP 413)",
)
flags.DEFINE_string(
    "grpc_channel_arguments",
    "",
    "TF Serving's flag: comma-separated gRPC server arguments, e.g. "
    "grpc.max_receive_message_length=1048576 (overrides --max_request_bytes for gRPC)",
)
flags.DEFINE_integer(
    "rest_api_max_body_bytes",
    None,
    "largest accepted REST body, larger gets HTTP 413 (ours: TF Serving has no such limit); "
    "default --max_request_bytes",
)
flags.DEFINE_bool(
    "require_compatible_signatures",
    False,
    "refuse a new version whose signatures "
    "drop or change the inputs of the version it replaces (FAILED_PRECONDITION in status)",
)
flags.DEFINE_string("ssl_cert_file", "", "PEM server certificate: serve gRPC and REST over TLS")
flags.DEFINE_string("ssl_key_file", "", "PEM private key for --ssl_cert_file")
flags.DEFINE_string(
    "request_log_file",
    "",
    "write sampled Predict requests here as PredictionLog "
    "TFRecords (replay them with recsys monitor --request_log)",
)
flags.DEFINE_float("request_log_sample_rate", 0.01, "share of Predict requests logged")
flags.DEFINE_integer("request_log_max_records", 0, "stop logging after this many records (0: no limit)")
flags.DEFINE_string(
    "shadow",
    "",
    "shadow mode: PRIMARY=TARGET mirrors Predict traffic of model PRIMARY "
    "to TARGET (name[@version|:label]) and records PD, e.g. ranker=ranker:canary",
)
flags.DEFINE_float("shadow_sample_rate", 0.1, "share of primary Predict requests mirrored")
flags.DEFINE_integer("shadow_window", 10000, "rows in the shadow PD sliding window")
flags.DEFINE_integer("shadow_evaluate_every", 100, "mirrored requests between PD evaluations")
flags.DEFINE_string("shadow_logdir", "", "TensorBoard directory for the shadow PD (study tags)")
flags.DEFINE_float("shadow_max_relative_pd", None, "log an ALERT when the shadow relative PD exceeds this")


def build_options():
    """Flags -> ServerOptions."""
    from serving.batching import BatchingParameters
    from serving.model_config import parse_config, single_model_config
    from serving.server import ServerOptions, parse_channel_arguments

    if FLAGS.model_config_file:
        with open(FLAGS.model_config_file) as fh:
            models = parse_config(fh.read())
    elif FLAGS.model_base_path:
        models = [single_model_config(FLAGS.model_name, FLAGS.model_base_path)]
    else:
        raise SystemExit("recsys serve: give --model_base_path (with --model_name) or --model_config_file")
    try:
        parse_channel_arguments(FLAGS.grpc_channel_arguments)
    except ValueError as err:
        raise SystemExit(f"recsys serve: {err}") from None
    batching = None
    if FLAGS.enable_batching:
        text = open(FLAGS.batching_parameters_file).read() if FLAGS.batching_parameters_file else ""
        batching = BatchingParameters.parse(text)
    shadow = None
    if FLAGS.shadow:
        from serving.divergence import Thresholds
        from serving.shadow import ShadowConfig

        primary, _, target = FLAGS.shadow.partition("=")
        if not primary or not target:
            raise SystemExit("recsys serve: --shadow must be PRIMARY=TARGET")
        shadow = ShadowConfig(
            primary,
            target,
            FLAGS.shadow_sample_rate,
            FLAGS.shadow_window,
            FLAGS.shadow_evaluate_every,
            FLAGS.shadow_logdir or None,
            thresholds=Thresholds(relative=FLAGS.shadow_max_relative_pd),
        )
    return ServerOptions(
        models=models,
        host=FLAGS.host,
        port=FLAGS.port,
        rest_api_port=FLAGS.rest_api_port or None,
        file_system_poll_wait_seconds=FLAGS.file_system_poll_wait_seconds,
        batching=batching,
        enable_model_warmup=FLAGS.enable_model_warmup,
        num_request_iterations_for_warmup=FLAGS.num_request_iterations_for_warmup,
        tensorflow_intra_op_parallelism=FLAGS.tensorflow_intra_op_parallelism,
        tensorflow_inter_op_parallelism=FLAGS.tensorflow_inter_op_parallelism,
        grpc_max_threads=FLAGS.grpc_max_threads,
        max_receive_message_bytes=FLAGS.max_request_bytes,
        grpc_channel_arguments=FLAGS.grpc_channel_arguments,
        max_rest_body_bytes=(
            FLAGS.max_request_bytes
            if FLAGS.rest_api_max_body_bytes is None
            else FLAGS.rest_api_max_body_bytes
        ),
        require_compatible_signatures=FLAGS.require_compatible_signatures,
        max_num_load_retries=FLAGS.max_num_load_retries,
        load_retry_interval_seconds=FLAGS.load_retry_interval_micros / 1e6,
        ssl_cert_file=FLAGS.ssl_cert_file,
        ssl_key_file=FLAGS.ssl_key_file,
        shadow=shadow,
        request_log_file=FLAGS.request_log_file,
        request_log_sample_rate=FLAGS.request_log_sample_rate,
        request_log_max_records=FLAGS.request_log_max_records,
    )


def _watch_config(server) -> None:
    """Reload the model config file when it changes (TF Serving's config file polling)."""
    import os

    from serving.model_config import parse_config

    log = logging.getLogger("recsys.serve")
    path = FLAGS.model_config_file
    last = os.stat(path).st_mtime_ns
    while True:
        time.sleep(FLAGS.model_config_file_poll_wait_seconds)
        try:
            mtime = os.stat(path).st_mtime_ns
            if mtime != last:
                last = mtime
                with open(path) as fh:
                    server.manager.reload(parse_config(fh.read()))
                log.info("reloaded model config from %s", path)
        except Exception:  # noqa: BLE001 - a bad edit is logged; the old config keeps serving
            log.exception("could not reload %s", path)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise SystemExit(f"recsys serve: unexpected arguments {argv[1:]}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from serving.server import ModelServer

    try:
        server = ModelServer(build_options()).start()
    except OSError as err:  # a port in use: one line, no traceback
        raise SystemExit(f"recsys serve: {err}") from None
    # One line a launcher (or a test) can wait for; ports are the bound ones (useful with port 0).
    print(
        f"recsys serve: ready grpc={FLAGS.host}:{server.port}"
        + (f" rest={FLAGS.host}:{server.rest_port}" if server.rest else ""),
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: server.grpc_server.stop(1))
    if FLAGS.model_config_file and FLAGS.model_config_file_poll_wait_seconds > 0:
        threading.Thread(target=_watch_config, args=(server,), daemon=True, name="config-poll").start()
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
