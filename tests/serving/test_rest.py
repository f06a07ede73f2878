"""TF Serving's REST API with a real HTTP client (http.client) against a running server."""

from __future__ import annotations

import base64
import http.client
import json

import numpy as np
import pytest

from serving import testing
from serving.model_config import parse_config
from serving.server import ModelServer, ServerOptions
from tests.serving.conftest import ROWS, expected
from tests.serving.test_grpc import CONFIG


@pytest.fixture(scope="module")
def rest_server(exported, tmp_path_factory):
    """One server for the module (the tests only read): versions 1, 2, labels stable/canary."""
    base = str(tmp_path_factory.mktemp("rest") / "tiny")
    for v in (1, 2):
        testing.copy_version(exported[v], base, v)
    server = ModelServer(ServerOptions(parse_config(CONFIG % base), rest_api_port=0)).start()
    yield server
    server.stop(grace=0.1)


@pytest.fixture
def rest(rest_server):
    conn = http.client.HTTPConnection("127.0.0.1", rest_server.rest_port, timeout=30)

    def call(method: str, path: str, body=None, raw: bytes | None = None, parse=True):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        payload = resp.read()
        return resp.status, (json.loads(payload) if parse else payload.decode())

    yield call
    conn.close()


INSTANCES = [
    {"cat": c.decode(), "x1": float(a), "x2": float(b)}
    for c, a, b in zip(ROWS["cat"], ROWS["x1"], ROWS["x2"], strict=True)
]


def test_status_and_metadata(rest):
    status, body = rest("GET", "/v1/models/tiny")
    assert status == 200
    assert body == {
        "model_version_status": [
            {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
        ]
    }
    status, body = rest("GET", "/v1/models/tiny/labels/stable")
    assert status == 200 and [v["version"] for v in body["model_version_status"]] == ["1"]
    status, body = rest("GET", "/v1/models/tiny/versions/1/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "tiny", "signature_name": "", "version": "1"}
    sig = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["x1"]["dtype"] == "DT_FLOAT" and sig["inputs"]["cat"]["dtype"] == "DT_STRING"
    assert sig["method_name"] == "tensorflow/serving/predict"


def test_predict_row_and_columnar_formats(rest):
    status, body = rest("POST", "/v1/models/tiny:predict", {"instances": INSTANCES})
    assert status == 200
    np.testing.assert_allclose(body["predictions"], expected(2), rtol=1e-6)
    # float32 outputs are written with their shortest round-trip digits, as TF Serving does
    assert [np.float32(v) for v in body["predictions"]] == list(expected(2))
    cols = {k: [i[k] for i in INSTANCES] for k in ("cat", "x1", "x2")}
    status, body = rest("POST", "/v1/models/tiny/versions/1:predict", {"inputs": cols})
    assert status == 200
    np.testing.assert_allclose(body["outputs"], expected(1), rtol=1e-6)
    b64 = dict(cols, cat=[{"b64": base64.b64encode(c.encode()).decode()} for c in cols["cat"]])
    status, body = rest(
        "POST", "/v1/models/tiny/labels/stable:predict", {"signature_name": "serving_default", "inputs": b64}
    )
    assert status == 200
    np.testing.assert_allclose(body["outputs"], expected(1), rtol=1e-6)


def test_classify_and_regress(rest):
    examples = [{"cat": i["cat"], "x1": i["x1"], "x2": i["x2"]} for i in INSTANCES]
    status, body = rest(
        "POST", "/v1/models/tiny:regress", {"signature_name": "regress", "examples": examples}
    )
    assert status == 200
    np.testing.assert_allclose(body["results"], expected(2), rtol=1e-6)
    status, body = rest(
        "POST", "/v1/models/tiny/versions/1:classify", {"signature_name": "classify", "examples": examples}
    )
    assert status == 200
    assert [label for label, _ in body["results"][0]] == ["no_click", "click"]
    np.testing.assert_allclose([row[1][1] for row in body["results"]], expected(1), rtol=1e-6)


@pytest.mark.parametrize(
    "method,path,body,code,needle",
    [
        ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
        ("POST", "/v1/models/nope:predict", {"instances": [1]}, 404, "Servable not found"),
        ("POST", "/v1/models/tiny/versions/9:predict", {"instances": INSTANCES}, 404, "Specific(tiny, 9)"),
        (
            "POST",
            "/v1/models/tiny/labels/nope:predict",
            {"instances": INSTANCES},
            400,
            "Unrecognized servable version label",
        ),
        (
            "POST",
            "/v1/models/tiny:predict",
            {"signature_name": "nope", "instances": INSTANCES},
            400,
            'Serving signature key "nope" not found',
        ),
        ("POST", "/v1/models/tiny:predict", {"instances": [{"cat": "a", "x1": 1.0}]}, 400, "Missing"),
        (
            "POST",
            "/v1/models/tiny:predict",
            {"instances": [{"cat": "a", "x1": "one", "x2": 1}]},
            400,
            "expects float",
        ),
        ("POST", "/v1/models/tiny:predict", {"instances": [{"cat": 5, "x1": 1, "x2": 1}]}, 400, "string"),
        (
            "POST",
            "/v1/models/tiny:predict",
            {"inputs": {"cat": ["a"], "x1": [1.0, 2.0], "x2": [1.0]}},
            400,
            "batch sizes",
        ),
        (
            "POST",
            "/v1/models/tiny:predict",
            {"inputs": {"cat": [["a"]], "x1": [1.0], "x2": [1.0]}},
            400,
            "expects shape",
        ),
        ("POST", "/v1/models/tiny:predict", {}, 400, "exactly one of 'instances'"),
        ("POST", "/v1/models/tiny:predict", [1, 2], 400, "JSON object"),
        ("GET", "/v1/models/tiny:predict", None, 400, "Malformed request"),  # TF Serving: under /v1/
        ("GET", "/v2/whatever", None, 404, "Malformed request"),
    ],
)
def test_errors(rest, method, path, body, code, needle):
    status, payload = rest(method, path, body)
    assert status == code, payload
    assert needle in payload["error"]


def test_invalid_json_and_server_keeps_serving(rest):
    status, payload = rest("POST", "/v1/models/tiny:predict", raw=b'{"instances": [1,')
    assert status == 400 and "JSON Parse error" in payload["error"]
    status, body = rest("POST", "/v1/models/tiny:predict", {"instances": INSTANCES})
    assert status == 200 and len(body["predictions"]) == 4


def test_prometheus_endpoint(rest):
    from tests.serving.conftest import scrape

    rest("POST", "/v1/models/tiny:predict", {"instances": INSTANCES})
    status, text = rest("GET", "/monitoring/prometheus/metrics", parse=False)
    assert status == 200
    metrics = scrape(text)
    assert metrics[("recsys_serving_requests_total", (("code", "OK"), ("method", "predict")))] >= 1
    assert metrics[("recsys_serving_model_versions", (("model", "tiny"), ("version", "2")))] == 1


def test_oversize_body_is_rejected(rest_server):
    conn = http.client.HTTPConnection("127.0.0.1", rest_server.rest_port, timeout=30)
    conn.putrequest("POST", "/v1/models/tiny:predict")
    conn.putheader("Content-Length", str(1 << 40))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and "exceeds the limit" in json.loads(resp.read())["error"]
    conn.close()


def test_rest_client_used_by_query_and_monitor(rest_server):
    from serving.tools import client

    replica = client.Replica.parse(f"http://127.0.0.1:{rest_server.rest_port}/tiny:stable")
    rest_client = client.connect(replica)
    specs = rest_client.inputs(replica.spec)
    assert set(specs) == {"cat", "x1", "x2"}
    out = rest_client.predict(replica.spec, client.rows_to_inputs(INSTANCES, specs))
    np.testing.assert_allclose(client.prediction_of(out), expected(1), rtol=1e-6)
