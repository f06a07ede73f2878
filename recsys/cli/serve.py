"""``recsys serve``: the model server with TF Serving's gRPC and REST APIs and its flag names.

recsys serve --port=8500 --rest_api_port=8501 --model_name=ranker --model_base_path=/models/ranker
recsys serve --model_config_file=models.config --enable_batching --batching_parameters_file=batch.config
recsys serve --config job.yaml --set serve.port=9000   (settings under ``serve:`` in the file)

Flags are generated from :class:`recsys.settings.serve.ServeSettings`.
"""

from __future__ import annotations

import logging
import pathlib
import signal
import threading
import time
from typing import TYPE_CHECKING

from recsys.cli import exits
from recsys.cli.flagging import Flags
from recsys.settings.serve import ServeSettings

if TYPE_CHECKING:
    from serving.server import ModelServer, ServerOptions

SETTINGS = Flags(ServeSettings, "serve")


def server_options(s: ServeSettings) -> ServerOptions:
    """Settings -> ServerOptions: the one place the flags meet the server (model list, batching, shadow)."""
    from serving.batching import BatchingParameters
    from serving.model_config import read_config, single_model_config
    from serving.server import ServerOptions, parse_channel_arguments

    if s.model_config_file:
        models = read_config(s.model_config_file)
    elif s.model_base_path:
        models = [single_model_config(s.model_name, s.model_base_path)]
    else:
        raise SystemExit("recsys serve: give --model_base_path (with --model_name) or --model_config_file")
    try:
        parse_channel_arguments(s.grpc_channel_arguments)
    except ValueError as err:
        raise SystemExit(f"recsys serve: {err}") from None
    batching = None
    if s.enable_batching:
        text = pathlib.Path(s.batching_parameters_file).read_text() if s.batching_parameters_file else ""
        batching = BatchingParameters.parse(text)
    shadow = None
    if s.shadow:
        from serving.gate import Thresholds
        from serving.shadow import ShadowConfig

        primary, _, target = s.shadow.partition("=")  # both non-empty: ServeSettings checked
        shadow = ShadowConfig(primary, target, s.shadow_sample_rate, s.shadow_window,
                              s.shadow_evaluate_every, s.shadow_logdir or None,
                              thresholds=Thresholds(max_relative_pd=s.shadow_max_relative_pd))
    return ServerOptions(
        models=models, host=s.host, port=s.port, rest_api_port=s.rest_api_port or None,
        file_system_poll_wait_seconds=s.file_system_poll_wait_seconds, batching=batching,
        enable_model_warmup=s.enable_model_warmup,
        num_request_iterations_for_warmup=s.num_request_iterations_for_warmup,
        tensorflow_intra_op_parallelism=s.tensorflow_intra_op_parallelism,
        tensorflow_inter_op_parallelism=s.tensorflow_inter_op_parallelism,
        grpc_max_threads=s.grpc_max_threads, max_receive_message_bytes=s.max_request_bytes,
        grpc_channel_arguments=s.grpc_channel_arguments,
        max_rest_body_bytes=s.max_request_bytes if s.rest_api_max_body_bytes is None
        else s.rest_api_max_body_bytes,
        require_compatible_signatures=s.require_compatible_signatures,
        max_num_load_retries=s.max_num_load_retries,
        load_retry_interval_seconds=s.load_retry_interval_micros / 1e6,
        ssl_cert_file=s.ssl_cert_file, ssl_key_file=s.ssl_key_file, shadow=shadow,
        request_log_file=s.request_log_file, request_log_sample_rate=s.request_log_sample_rate,
        request_log_max_records=s.request_log_max_records,
        max_request_elements=s.max_request_elements, max_decoded_request_bytes=s.max_decoded_request_bytes,
        max_inflight_decoded_bytes=s.max_inflight_decoded_bytes, ssl_client_ca=s.ssl_client_ca,
        allow_config_reload=s.allow_config_reload,
        allowed_model_roots=tuple(r for r in s.allowed_model_roots.split(",") if r),
        rest_max_connections=s.rest_max_connections, rest_idle_timeout_seconds=s.rest_idle_timeout_seconds,
    )  # fmt: skip


def _watch_config(server: ModelServer, path: str, every: float) -> None:
    """Reload the model config file when it changes (TF Serving's config file polling)."""
    import os

    from serving.model_config import read_config

    log = logging.getLogger("recsys.serve")
    last = os.stat(path).st_mtime_ns
    while True:
        time.sleep(every)
        try:
            mtime = os.stat(path).st_mtime_ns
            if mtime != last:
                last = mtime
                server.manager.reload(read_config(path))
                log.info("reloaded model config from %s", path)
        except Exception:  # noqa: BLE001 - a bad edit is logged; the old config keeps serving
            log.exception("could not reload %s", path)


def main(argv: list[str]) -> None:
    exits.no_arguments("serve", argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = SETTINGS.load("serve")  # --print_config and config errors: before TensorFlow loads
    from serving.server import ModelServer

    try:
        server = ModelServer(server_options(settings)).start()
    except OSError as err:  # a port in use: one line, no traceback
        raise SystemExit(f"recsys serve: {err}") from None
    # One line a launcher (or a test) can wait for; ports are the bound ones (useful with port 0).
    print(
        f"recsys serve: ready grpc={settings.host}:{server.port}"
        + (f" rest={settings.host}:{server.rest_port}" if server.rest else ""),
        flush=True,
    )
    grpc_server = server.grpc_server
    assert grpc_server is not None  # started above
    signal.signal(signal.SIGTERM, lambda *_: grpc_server.stop(1))
    if settings.model_config_file and settings.model_config_file_poll_wait_seconds > 0:
        threading.Thread(target=_watch_config, daemon=True, name="config-poll",
                         args=(server, settings.model_config_file,
                               settings.model_config_file_poll_wait_seconds)).start()
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
