"""The fuzzed server of test_fuzz_rest.py and test_fuzz_grpc.py: a real ``recsys serve`` process with
small limits, the shared settings and the checks on its log.

Each front end gets a fixed number of requests (derandomized: the same ones on every run). Every answer
must be a client error or success, never HTTP 5xx / INTERNAL / UNKNOWN; the server log must show no
internal error and the process must still answer correctly at the end. The counts by status are
printed (``pytest -s``).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys

import grpc
from hypothesis import HealthCheck, settings

from recsys.launch.ports import free_ports
from serving import testing
from tests.serving.conftest import ROWS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES_PER_FRONT_END = 200
LIMIT = 1 << 18  # REST body and gRPC message limit of the fuzzed server, set through the CLI flags
FUZZ = settings(
    max_examples=EXAMPLES_PER_FRONT_END,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
GOOD_ROWS = [
    {"cat": c.decode(), "x1": float(a), "x2": float(b)}
    for c, a, b in zip(ROWS["cat"], ROWS["x1"], ROWS["x2"], strict=True)
]

def serve(exported, tmp_path_factory):
    """``recsys serve`` on versions 1 and 2 (label stable=1), small limits from the CLI flags."""
    root = tmp_path_factory.mktemp("fuzz")
    base = str(root / "tiny")
    for v in (1, 2):
        testing.copy_version(exported[v], base, v)
    config = root / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "tiny" base_path: "{base}" model_platform: "tensorflow" '
        'model_version_policy { all {} } version_labels { key: "stable" value: 1 } } }'
    )
    (rest_port,) = free_ports(1)
    log_path = root / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "recsys.cli",
                "serve",
                "--port=0",
                f"--rest_api_port={rest_port}",
                f"--model_config_file={config}",
                f"--grpc_channel_arguments=grpc.max_receive_message_length={LIMIT}",
                f"--rest_api_max_body_bytes={LIMIT}",
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=REPO,
        )
    try:
        line = proc.stdout.readline()
        assert line.startswith("recsys serve: ready grpc=127.0.0.1:"), (line, log_path.read_text())
        grpc_address = line.split("grpc=")[1].split()[0]
        channel = grpc.insecure_channel(grpc_address)
        yield proc, grpc_address, rest_port, channel, log_path
        channel.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def print_counts(front_end: str, counts: collections.Counter) -> None:
    by_status = {str(k): n for k, n in sorted(counts.items(), key=lambda kv: str(kv[0]))}
    print(f"\n{front_end} fuzz: {sum(counts.values())} requests by status {by_status}")


def assert_clean_log(log_path) -> None:
    """The server never hit its catch-all (``internal error``) and printed no traceback."""
    text = log_path.read_text()
    assert "internal error" not in text and "Traceback" not in text, text[-3000:]
