"""Errors that point to the fix (issue 20, item 7), against a real server on 127.0.0.1.

- An unknown model name: TF Serving's NOT_FOUND text, then the names the server serves (gRPC and REST).
- A gRPC client given the REST port: says so and names the fix, instead of ``Failed parsing HTTP/2``;
  a REST client given the gRPC port too, instead of ``BadStatusLine('\x00\x00\x18\x04...')``.
- Regress and Classify without a signature name run the model's one signature of that method.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_status_pb2,
    model_pb2,
    regression_pb2,
)

from serving.model_config import single_model_config
from serving.tools import client
from serving.tools.promote import PromoteConfig, Promotion
from tests.serving.conftest import ROWS, expected, predict_request, scrape

SERVED = "this server serves 'other', 'tiny'"
REPO = str(Path(__file__).resolve().parents[2])


@pytest.fixture
def server(base_path, serve, tmp_path):
    base_path(1)
    return serve(
        models=[single_model_config("tiny", base_path.path), single_model_config("other", base_path.path)],
        rest_api_port=0,
    )


def _examples() -> list[example_pb2.Example]:
    out = []
    for c, a, b in zip(ROWS["cat"], ROWS["x1"], ROWS["x2"], strict=True):
        ex = example_pb2.Example()
        ex.features.feature["cat"].bytes_list.value.append(c)
        ex.features.feature["x1"].float_list.value.append(float(a))
        ex.features.feature["x2"].float_list.value.append(float(b))
        out.append(ex)
    return out


def _rest(port: int, method: str, path: str, body=None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body).encode())
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_an_unknown_model_lists_the_served_ones(server, stubs):
    s = stubs(server)
    spec = model_pb2.ModelSpec(name="tinny")
    regress = regression_pb2.RegressionRequest(model_spec=spec)
    regress.input.example_list.examples.extend(_examples())
    classify = classification_pb2.ClassificationRequest(model_spec=spec)
    classify.input.example_list.examples.extend(_examples())
    calls = [
        (s.predict.Predict, predict_request(name="tinny")),
        (s.predict.Regress, regress),
        (s.predict.Classify, classify),
    ]
    for call, request in calls:
        with pytest.raises(grpc.RpcError) as err:
            call(request)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert err.value.details() == f"Servable not found for request: Latest(tinny); {SERVED}"
    with pytest.raises(grpc.RpcError) as err:
        s.model.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec=spec))
    assert err.value.details() == f"Could not find any versions of model tinny; {SERVED}"
    # a known model whose version is missing gets TF Serving's text alone
    with pytest.raises(grpc.RpcError) as err:
        s.predict.Predict(predict_request(version=9))
    assert err.value.details() == "Servable not found for request: Specific(tiny, 9)"

    instances = [{"cat": "a", "x1": 1.0, "x2": 2.0}]
    assert _rest(server.rest_port, "POST", "/v1/models/tinny:predict", {"instances": instances}) == (
        404,
        {"error": f"Servable not found for request: Latest(tinny); {SERVED}"},
    )
    assert _rest(server.rest_port, "POST", "/v1/models/tinny:regress", {"examples": instances})[1] == {
        "error": f"Servable not found for request: Latest(tinny); {SERVED}"
    }
    assert _rest(server.rest_port, "GET", "/v1/models/tinny") == (
        404,
        {"error": f"Could not find any versions of model tinny; {SERVED}"},
    )


def test_a_grpc_client_on_the_rest_port_is_told_so(server, tmp_path):
    rest_address = f"127.0.0.1:{server.rest_port}"
    grpc_client = client.GrpcClient(rest_address, timeout=10)
    try:
        with pytest.raises(client.WrongPortError) as err:
            grpc_client.inputs(model_pb2.ModelSpec(name="tiny"))
    finally:
        grpc_client.close()
    message = str(err.value)
    assert message.startswith(f"{rest_address} answered in HTTP/1.x: this looks like the REST port")
    assert "--port (8500 by default" in message and "HTTP/2" not in message

    assert client.explain_rpc_error(err.value, rest_address) == message

    # and the other way round: the REST client on the gRPC port
    rest_client = client.RestClient(f"127.0.0.1:{server.port}", timeout=10)
    with pytest.raises(client.WrongPortError) as err:
        rest_client.inputs(model_pb2.ModelSpec(name="tiny"))
    assert str(err.value).startswith(
        f"http://127.0.0.1:{server.port} answered in HTTP/2: this looks like the gRPC port; "
        "the REST port is the server's --rest_api_port"
    )

    # recsys promote: the decision's reason is the hint
    config = tmp_path / "models.config"
    config.write_text(
        'model_config_list { config { name: "tiny" base_path: "/x" model_platform: "tensorflow" '
        'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 1 } } }\n'
    )
    from serving.gate import Thresholds

    promotion = Promotion(
        PromoteConfig(
            servers=[rest_address],
            model="tiny",
            model_config_file=str(config),
            thresholds=Thresholds(max_relative_pd=1.0),
            timeout=10,
        )
    )
    try:
        record = promotion.run()
    finally:
        promotion.close()
    assert record["decision"] == "error" and record["reason"] == message


def test_regress_and_classify_without_a_signature_name(server, stubs):
    s = stubs(server)
    request = regression_pb2.RegressionRequest(model_spec=model_pb2.ModelSpec(name="tiny"))
    request.input.example_list.examples.extend(_examples())
    response = s.predict.Regress(request)
    assert response.model_spec.signature_name == "regress"
    np.testing.assert_allclose([r.value for r in response.result.regressions], expected(1), rtol=1e-6)
    request = classification_pb2.ClassificationRequest(model_spec=model_pb2.ModelSpec(name="tiny"))
    request.input.example_list.examples.extend(_examples())
    response = s.predict.Classify(request)
    assert response.model_spec.signature_name == "classify"
    scores = [row.classes[1].score for row in response.result.classifications]
    np.testing.assert_allclose(scores, expected(1), rtol=1e-6)

    columns = zip(ROWS["cat"], ROWS["x1"], ROWS["x2"], strict=True)
    examples = [{"cat": c.decode(), "x1": float(a), "x2": float(b)} for c, a, b in columns]
    status, body = _rest(server.rest_port, "POST", "/v1/models/tiny:regress", {"examples": examples})
    assert status == 200
    np.testing.assert_allclose(body["results"], expected(1), rtol=1e-6)
    # a signature named explicitly is still the one run: serving_default is not a regress signature
    status, body = _rest(
        server.rest_port,
        "POST",
        "/v1/models/tiny:regress",
        {"signature_name": "serving_default", "examples": examples},
    )
    assert status == 400 and "signature 'serving_default'" in body["error"]
    # the latency histogram names the signature that ran
    m = scrape(server.metrics_text())
    labels = {"API": "Regress", "model_name": "tiny", "model_version": "1", "signature_name": "regress"}
    labels["entrypoint"] = "GRPC"
    assert m[(":tensorflow:serving:request_latency_count", tuple(sorted(labels.items())))] == 1


def test_recsys_query_on_the_wrong_port_says_so(server, tmp_path):
    """``recsys query`` as a process, given the REST port for gRPC and the gRPC port with --rest."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"cat": "a", "x1": 1.0, "x2": 2.0}) + "\n")
    query = [sys.executable, "-m", "recsys.cli", "query", "--model_name=tiny", f"--rows={rows}"]
    env = dict(os.environ, PYTHONPATH=REPO)
    for flags, want in (
        ([f"--server=127.0.0.1:{server.rest_port}"], "answered in HTTP/1.x: this looks like the REST port"),
        (["--rest", f"--server=127.0.0.1:{server.port}"], "answered in HTTP/2: this looks like the gRPC"),
    ):
        done = subprocess.run(query + flags, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 1 and done.stdout == ""
        (line,) = done.stderr.splitlines()  # one line, no traceback
        assert line.startswith("recsys query: ") and want in line, done.stderr
