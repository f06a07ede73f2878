"""TLS: gRPC and REST with a self-signed certificate (openssl), and the client's --root_cert path."""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import subprocess
from pathlib import Path

import numpy as np
import pytest

from serving.tools import client
from tests.serving.conftest import expected, predict_request


@pytest.fixture
def cert(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    key, crt = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(crt),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return str(crt), str(key)


def test_grpc_and_rest_over_tls(base_path, serve, cert):
    crt, key = cert
    base_path(1)
    server = serve(base=base_path.path, rest_api_port=0, ssl_cert_file=crt, ssl_key_file=key)
    grpc_client = client.GrpcClient(f"localhost:{server.port}", root_certificates=Path(crt).read_bytes())
    request = predict_request()
    inputs = {k: client.codec.to_numpy(v) for k, v in request.inputs.items()}
    out = grpc_client.predict(request.model_spec, inputs)
    np.testing.assert_allclose(out["probability"], expected(1), rtol=1e-6)
    grpc_client.close()
    context = ssl.create_default_context(cafile=crt)
    conn = http.client.HTTPSConnection("localhost", server.rest_port, context=context, timeout=30)
    conn.request("GET", "/v1/models/tiny")
    resp = conn.getresponse()
    assert resp.status == 200
    assert json.loads(resp.read())["model_version_status"][0]["state"] == "AVAILABLE"
    conn.close()
