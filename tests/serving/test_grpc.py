"""gRPC PredictionService / ModelService against a running server with a real stub."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from google.protobuf import text_format
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from serving import codec
from serving.model_config import parse_config
from tests.serving.conftest import ROWS, expected, predict_request

CONFIG = """
model_config_list {
  config {
    name: "tiny" base_path: "%s" model_platform: "tensorflow"
    model_version_policy { all {} }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
}
"""


@pytest.fixture
def two_versions(base_path, serve, stubs):
    base_path(1)
    base_path(2)
    server = serve(models=parse_config(CONFIG % base_path.path))
    return server, stubs(server)


def test_predict_latest_version_label_and_numbers(two_versions):
    _, s = two_versions
    r = s.predict.Predict(predict_request())
    assert r.model_spec.name == "tiny" and r.model_spec.version.value == 2
    assert r.model_spec.signature_name == "serving_default"
    np.testing.assert_allclose(codec.to_numpy(r.outputs["probability"]), expected(2), rtol=1e-6)
    r1 = s.predict.Predict(predict_request(version=1))
    np.testing.assert_allclose(codec.to_numpy(r1.outputs["probability"]), expected(1), rtol=1e-6)
    assert s.predict.Predict(predict_request(label="stable")).model_spec.version.value == 1
    assert s.predict.Predict(predict_request(label="canary")).model_spec.version.value == 2


def test_typed_value_fields_and_make_tensor_proto_are_accepted(two_versions):
    from recsys.compat import tf

    _, s = two_versions
    req = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="tiny"))
    for k, v in ROWS.items():
        req.inputs[k].CopyFrom(tf.make_tensor_proto(v))  # float_val / string_val, not tensor_content
    out = tf.make_ndarray(s.predict.Predict(req).outputs["probability"])
    np.testing.assert_allclose(out, expected(2), rtol=1e-6)


def test_examples_signature_classify_regress(two_versions):
    _, s = two_versions
    examples = []
    for c, a, b in zip(ROWS["cat"], ROWS["x1"], ROWS["x2"], strict=True):
        ex = example_pb2.Example()
        ex.features.feature["cat"].bytes_list.value.append(c)
        ex.features.feature["x1"].float_list.value.append(float(a))
        ex.features.feature["x2"].float_list.value.append(float(b))
        examples.append(ex)
    serialized = np.array([e.SerializeToString() for e in examples], dtype=object)
    req = predict_request(rows={"inputs": serialized}, signature="predict_examples", version=1)
    r = s.predict.Predict(req)
    np.testing.assert_allclose(codec.to_numpy(r.outputs["scores"]), expected(1), rtol=1e-6)

    spec = model_pb2.ModelSpec(name="tiny", signature_name="regress")
    rreq = regression_pb2.RegressionRequest(model_spec=spec)
    rreq.input.example_list.examples.extend(examples)
    values = [x.value for x in s.predict.Regress(rreq).result.regressions]
    np.testing.assert_allclose(values, expected(2), rtol=1e-6)

    spec.signature_name = "classify"
    creq = classification_pb2.ClassificationRequest(model_spec=spec)
    creq.input.example_list.examples.extend(examples)
    result = s.predict.Classify(creq).result.classifications
    assert [c.label for c in result[0].classes] == ["no_click", "click"]
    np.testing.assert_allclose([row.classes[1].score for row in result], expected(2), rtol=1e-6)


def test_metadata_and_status(two_versions):
    _, s = two_versions
    req = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_pb2.ModelSpec(name="tiny"), metadata_field=["signature_def"]
    )
    meta = s.predict.GetModelMetadata(req)
    assert meta.model_spec.version.value == 2
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    meta.metadata["signature_def"].Unpack(sig_map)
    assert set(sig_map.signature_def) == {"serving_default", "predict_examples", "regress", "classify"}
    sd = sig_map.signature_def["serving_default"]
    assert set(sd.inputs) == {"cat", "x1", "x2"} and list(sd.outputs) == ["probability"]
    assert sig_map.signature_def["regress"].method_name == "tensorflow/serving/regress"

    status = s.model.GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="tiny"))
    )
    got = {v.version: (v.state, v.status.error_code) for v in status.model_version_status}
    available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert got == {1: (available, 0), 2: (available, 0)}
    one = s.model.GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(
            model_spec=model_pb2.ModelSpec(name="tiny", version_label="stable")
        )
    )
    assert [v.version for v in one.model_version_status] == [1]


def test_reload_config_moves_labels_and_adds_models(two_versions, base_path, tmp_path, exported):
    from serving import testing

    _, s = two_versions
    other = str(tmp_path / "other")
    testing.copy_version(exported[3], other, 7)
    text = (CONFIG % base_path.path).replace("value: 1 }", "value: 2 }") + ""
    config = text_format.Parse(text, model_management_pb2.ReloadConfigRequest().config)
    config.model_config_list.config.add(name="other", base_path=other, model_platform="tensorflow")
    resp = s.model.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=config))
    assert resp.status.error_code == 0
    assert s.predict.Predict(predict_request(label="stable")).model_spec.version.value == 2
    r = s.predict.Predict(predict_request(name="other"))
    assert r.model_spec.version.value == 7
    np.testing.assert_allclose(codec.to_numpy(r.outputs["probability"]), expected(3), rtol=1e-6)
    # dropping "other" unloads it
    del config.model_config_list.config[1]
    s.model.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=config))
    with pytest.raises(grpc.RpcError) as err:
        s.predict.Predict(predict_request(name="other"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_request_metrics_are_tf_servings_per_model_signature_and_version(base_path, serve, stubs):
    """:tensorflow:serving:request_count / request_latency (a histogram), on each server's own registry."""
    import http.client
    import json

    from tests.serving.conftest import scrape

    base_path(1)
    server = serve(base=base_path.path, rest_api_port=0)
    other = serve(base=base_path.path)  # a second server in the process counts only its own requests
    s = stubs(server)
    for _ in range(3):
        s.predict.Predict(predict_request())
    with pytest.raises(grpc.RpcError):
        s.predict.Predict(predict_request(name="nope"))
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    rows = {k: [x.decode() if isinstance(x, bytes) else float(x) for x in v] for k, v in ROWS.items()}
    conn.request("POST", "/v1/models/tiny:predict", json.dumps({"inputs": rows}))
    assert conn.getresponse().status == 200
    conn.close()
    m = scrape(server.metrics_text())
    count = ":tensorflow:serving:request_count_total"
    assert m[(count, (("model_name", "tiny"), ("status", "OK")))] == 4
    assert m[(count, (("model_name", "nope"), ("status", "NOT_FOUND")))] == 1
    labels = {"API": "Predict", "model_name": "tiny", "model_version": "1"}
    labels["signature_name"] = "serving_default"
    grpc_key = tuple(sorted({**labels, "entrypoint": "GRPC"}.items()))
    rest_key = tuple(sorted({**labels, "entrypoint": "REST"}.items()))
    assert m[(":tensorflow:serving:request_latency_count", grpc_key)] == 3
    assert m[(":tensorflow:serving:request_latency_count", rest_key)] == 1
    inf_key = tuple(sorted({**labels, "entrypoint": "GRPC", "le": "+Inf"}.items()))
    assert m[(":tensorflow:serving:request_latency_bucket", inf_key)] == 3
    assert m[(":tensorflow:serving:request_latency_sum", grpc_key)] > 0  # microseconds
    other_m = scrape(other.metrics_text())
    assert (count, (("model_name", "tiny"), ("status", "OK"))) not in other_m
    assert other_m[("recsys_serving_model_versions", (("model", "tiny"), ("version", "1")))] == 1
