"""``recsys serve`` as a process: TF Serving's flags, a model config file, batching parameters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import grpc
import numpy as np
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import codec
from tests.serving.conftest import expected, predict_request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_serve_cli_with_config_and_batching(base_path, tmp_path):
    base_path(1)
    base_path(2)
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "tiny" base_path: "{base_path.path}" '
        'model_platform: "tensorflow" model_version_policy { all {} } '
        'version_labels { key: "stable" value: 1 } } }'
    )
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: 32 }\nbatch_timeout_micros { value: 1000 }\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recsys.cli",
            "serve",
            "--port=0",
            f"--model_config_file={config}",
            "--enable_batching",
            f"--batching_parameters_file={batching}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("recsys serve: ready grpc=127.0.0.1:"), line
        address = line.split("grpc=")[1].split()[0]
        with grpc.insecure_channel(address) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            r = stub.Predict(predict_request(label="stable"), timeout=30)
            assert r.model_spec.version.value == 1
            np.testing.assert_allclose(codec.to_numpy(r.outputs["probability"]), expected(1), rtol=1e-6)
            assert stub.Predict(predict_request(), timeout=30).model_spec.version.value == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
