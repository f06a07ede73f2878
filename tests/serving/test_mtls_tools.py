"""``recsys promote`` and ``recsys monitor`` against a server that requires client certificates.

A real server on 127.0.0.1 started with ``--ssl_client_ca`` (certificates from test_tls's CA): the
commands' ``--root_cert`` / ``--client_cert`` / ``--client_key`` get them through; without a client
certificate the same command is refused by the TLS handshake.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

from recsys.settings.promote import PromoteSettings
from serving.gate import Thresholds
from serving.model_config import parse_config
from serving.tools.monitor import Monitor, MonitorConfig
from serving.tools.promote import PromoteConfig, Promotion
from serving.tools.tls import ClientTLS
from tests.serving.test_promote import CONFIG, _expected_pd
from tests.serving.test_tls import _pki

REPO = str(Path(__file__).resolve().parents[2])


@pytest.fixture
def mtls(base_path, serve, tmp_path):
    """A mutual-TLS server on versions 1 (stable) and 2 (canary), its models.config, rows and PKI."""
    pytest.importorskip("cryptography")
    pki = _pki(tmp_path)
    base_path(1)
    base_path(2)
    config = tmp_path / "models.config"
    config.write_text(CONFIG % (base_path.path, 1, 2))
    server = serve(
        models=parse_config(config.read_text()), rest_api_port=0, ssl_cert_file=pki["server"],
        ssl_key_file=pki["server_key"], ssl_client_ca=pki["ca"],
    )  # fmt: skip
    rows = tmp_path / "rows.jsonl"
    rng = np.random.default_rng(3)
    rows.write_text(
        "".join(
            json.dumps({"cat": "abcz"[i % 4], "x1": float(rng.normal()), "x2": float(rng.normal())}) + "\n"
            for i in range(32)
        )
    )
    return server, str(config), str(rows), pki


def test_monitor_checks_over_mutual_tls_grpc_and_rest(mtls):
    server, _, rows, pki = mtls
    want = _expected_pd(rows, 1, 2).relative.mean
    tls = ClientTLS(pki["ca"], pki["client"], pki["client_key"])
    for scheme, port in (("", server.port), ("https://", server.rest_port)):
        replicas = [f"{scheme}localhost:{port}/tiny@1", f"{scheme}localhost:{port}/tiny@2"]
        monitor = Monitor(MonitorConfig(replicas=replicas, rows=rows, batch_size=8, tls=tls))
        try:
            values = monitor.check()
        finally:
            monitor.close()
        assert values["errors"] == {} and values["rows"] == 32
        assert values["relative"] == pytest.approx(want, rel=1e-4)
        # the same without a client certificate: the server's handshake refuses it
        # (REST: the handshake's alert or the closed connection, whichever the client reads first)
        with pytest.raises((grpc.RpcError, OSError)) as err:
            Monitor(MonitorConfig(replicas=replicas, rows=rows, tls=ClientTLS(pki["ca"])))
        if isinstance(err.value, grpc.RpcError):
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_monitor_cli_takes_the_client_certificate(mtls):
    """``recsys monitor --check`` as a process: the flags reach the connection."""
    server, _, rows, pki = mtls
    replicas = [f"--replica=localhost:{server.port}/tiny@{v}" for v in (1, 2)]
    args = [sys.executable, "-m", "recsys.cli", "monitor", "--check", f"--rows={rows}", *replicas]
    tls = [f"--root_cert={pki['ca']}", f"--client_cert={pki['client']}", f"--client_key={pki['client_key']}"]
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run(args + tls, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["rows"] == 32
    refused = subprocess.run(args + tls[:1], capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 2 and "UNAVAILABLE" in refused.stderr, refused.stderr[-2000:]


def _promote(server, config: str, rows: str, tls: ClientTLS) -> dict:
    promotion = Promotion(
        PromoteConfig(
            servers=[f"localhost:{server.port}"], model="tiny", model_config_file=config, rows=rows,
            batch_size=8, thresholds=Thresholds(max_relative_pd=1.0), timeout=10.0, tls=tls,
        )
    )  # fmt: skip
    try:
        return promotion.run()
    finally:
        promotion.close()


def _stable(config: str) -> int:
    (model,) = parse_config(Path(config).read_text())
    return model.version_labels["stable"]


def test_promote_over_mutual_tls(mtls):
    server, config, rows, pki = mtls
    refused = _promote(server, config, rows, ClientTLS(pki["ca"]))  # no client certificate
    assert refused["decision"] == "error" and "UNAVAILABLE" in refused["reason"]
    assert _stable(config) == 1  # nothing moved
    record = _promote(server, config, rows, ClientTLS(pki["ca"], pki["client"], pki["client_key"]))
    assert record["decision"] == "promoted" and record["target_version_after"] == 2
    assert _stable(config) == 2


def test_promote_cli_takes_the_client_certificate(mtls):
    """``recsys promote`` as a process: the flags reach the gate's requests and the label move."""
    server, config, rows, pki = mtls
    args = [sys.executable, "-m", "recsys.cli", "promote", f"--server=localhost:{server.port}",
            "--model=tiny", f"--rows={rows}", f"--model_config_file={config}", "--max_relative_pd=1.0",
            "--batch_size=8", f"--root_cert={pki['ca']}", f"--client_cert={pki['client']}",
            f"--client_key={pki['client_key']}"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["decision"] == "promoted" and _stable(config) == 2


def test_a_certificate_without_its_key_is_a_usage_error():
    with pytest.raises(ValueError, match="client_cert and client_key go together"):
        PromoteSettings(model="m", model_config_file="f", client_cert="c.pem")
    with pytest.raises(ValueError, match="client_cert and client_key go together"):
        ClientTLS(client_key="k.pem")
