"""TLS: gRPC and REST with a self-signed certificate (openssl), and the client's --root_cert path."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import grpc
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


def _pki(tmp_path: Path) -> dict[str, str]:
    """A CA, a server certificate (localhost, 127.0.0.1) and a client certificate it signed (PEM files)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    out: dict[str, str] = {}

    def issue(name: str, issuer_key, issuer_name, ca: bool, san=None):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name or subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(issuer_key or key, hashes.SHA256())
        (tmp_path / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (tmp_path / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        out[name] = str(tmp_path / f"{name}.crt")
        out[name + "_key"] = str(tmp_path / f"{name}.key")
        return key, subject

    ca_key, ca_name = issue("ca", None, None, True)
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    issue("server", ca_key, ca_name, False, san)
    issue("client", ca_key, ca_name, False)
    issue("stranger", None, None, False)  # self-signed: not from the CA
    return out


def test_mutual_tls_refuses_clients_without_a_certificate_from_the_ca(base_path, serve, tmp_path):
    pytest.importorskip("cryptography")
    pki = _pki(tmp_path)
    base_path(1)
    server = serve(
        base=base_path.path, rest_api_port=0, ssl_cert_file=pki["server"], ssl_key_file=pki["server_key"],
        ssl_client_ca=pki["ca"],
    )
    ca = Path(pki["ca"]).read_bytes()
    request = predict_request()
    inputs = {k: client.codec.to_numpy(v) for k, v in request.inputs.items()}
    for who in (None, "stranger"):
        c = client.GrpcClient(
            f"localhost:{server.port}", 30.0, ca,
            Path(pki[who]).read_bytes() if who else None,
            Path(pki[who + "_key"]).read_bytes() if who else None,
        )
        with pytest.raises(grpc.RpcError) as err:
            c.predict(request.model_spec, inputs)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        c.close()
    cert, key = Path(pki["client"]).read_bytes(), Path(pki["client_key"]).read_bytes()
    good = client.GrpcClient(f"localhost:{server.port}", 30.0, ca, cert, key)
    out = good.predict(request.model_spec, inputs)
    np.testing.assert_allclose(out["probability"], expected(1), rtol=1e-6)
    good.close()

    def rest_get(cert: str | None) -> int:
        context = ssl.create_default_context(cafile=pki["ca"])
        if cert:
            context.load_cert_chain(pki[cert], pki[cert + "_key"])
        conn = http.client.HTTPSConnection("localhost", server.rest_port, context=context, timeout=30)
        try:
            conn.request("GET", "/v1/models/tiny")
            return conn.getresponse().status
        finally:
            conn.close()

    for who in (None, "stranger"):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            rest_get(who)
    assert rest_get("client") == 200


def test_an_idle_connection_does_not_block_the_tls_rest_port(base_path, serve, cert):
    """A raw TCP connection that never starts its handshake: other clients and /metrics still answer."""
    crt, key = cert
    base_path(1)
    server = serve(base=base_path.path, rest_api_port=0, ssl_cert_file=crt, ssl_key_file=key)
    idle = socket.create_connection(("127.0.0.1", server.rest_port), timeout=30)
    try:
        context = ssl.create_default_context(cafile=crt)
        for path in ("/v1/models/tiny", "/monitoring/prometheus/metrics"):
            conn = http.client.HTTPSConnection("localhost", server.rest_port, context=context, timeout=20)
            conn.request("GET", path)
            resp = conn.getresponse()
            assert resp.status == 200, path
            resp.read()
            conn.close()
    finally:
        idle.close()


def test_connections_beyond_the_cap_get_503_and_idle_ones_time_out(base_path, serve):
    base_path(1)
    server = serve(
        base=base_path.path, rest_api_port=0, rest_max_connections=2, rest_idle_timeout_seconds=3.0
    )
    idle = [socket.create_connection(("127.0.0.1", server.rest_port), timeout=30) for _ in range(2)]
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
        conn.request("GET", "/v1/models/tiny")
        resp = conn.getresponse()
        assert resp.status == 503  # the two idle connections hold both slots until their timeout
        assert "too many open connections" in json.loads(resp.read())["error"]
        conn.close()
        for s in idle:  # the server closed them: a read returns end-of-file instead of blocking
            assert s.recv(1) == b""
        conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
        conn.request("GET", "/v1/models/tiny")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        for s in idle:
            s.close()
