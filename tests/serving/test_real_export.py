"""The server against a real export of the project's trainer (recsys.export): gRPC, REST, Regress.

The test imports the trainer only to produce the export; the server itself never imports model code.
"""

from __future__ import annotations

import http.client
import json
import os

import numpy as np
import pytest
from tensorflow_serving.apis import model_pb2, predict_pb2, regression_pb2

from recsys.compat import tf
from serving import codec
from serving.model_config import single_model_config
from tests.serving.conftest import Stubs


@pytest.fixture(scope="module")
def real_export(tmp_path_factory):
    cfg = pytest.importorskip("recsys.config")
    train_mod = pytest.importorskip("recsys.train")
    synthetic = pytest.importorskip("pipelines.synthetic_spec")
    root = tmp_path_factory.mktemp("real_data")
    layout = synthetic.SyntheticLayout(num_numeric=3, num_categorical=3, num_multi=1, cardinality=20)
    spec = synthetic.write_synthetic(
        str(root), num_train=1024, num_eval=256, layout=layout, num_train_shards=1, num_eval_shards=1, seed=3
    )
    exp = cfg.load(
        "synthetic_small",
        [
            f"data.spec_dir={root}",
            "train.steps=5",
            "train.verbose=0",
            "data.batch_size=128",
            "train.checkpoint=false",
            "export.model_name=ranker",
        ],
    )
    result = train_mod.train(exp, str(tmp_path_factory.mktemp("real_model")))
    return result.export_path, spec


def _warmup_request(path: str) -> predict_pb2.PredictRequest:
    from tensorflow_serving.apis import prediction_log_pb2

    warmup = os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
    record = next(iter(tf.data.TFRecordDataset(warmup)))
    return prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request


def test_real_export_serves_like_the_saved_model(real_export, serve):
    path, spec = real_export
    server = serve(models=[single_model_config("ranker", os.path.dirname(path))], rest_api_port=0)
    s = Stubs(server.port)
    request = _warmup_request(path)
    request.model_spec.CopyFrom(model_pb2.ModelSpec(name="ranker"))
    got = codec.to_numpy(s.predict.Predict(request).outputs["probability"])
    loaded = tf.saved_model.load(path)
    raw = {k: tf.constant(codec.to_numpy(v)) for k, v in request.inputs.items()}
    want = loaded.signatures["serving_default"](**raw)["probability"].numpy()
    np.testing.assert_allclose(got, want.reshape(got.shape), rtol=1e-5, atol=1e-7)
    assert s.predict.Predict(request).model_spec.version.value == int(os.path.basename(path))

    # REST row format with the same values
    instances = [
        {
            k: (v[i].decode() if isinstance(v[i], bytes) else float(v[i]))
            for k, v in {a: codec.to_numpy(t) for a, t in request.inputs.items()}.items()
        }
        for i in range(got.shape[0])
    ]
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    conn.request(
        "POST",
        "/v1/models/ranker:predict",  # missing numerics go as NaN, as TF Serving reads
        body=json.dumps({"instances": instances}).encode(),
    )
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    assert resp.status == 200, body
    np.testing.assert_allclose(body["predictions"], got, rtol=1e-5, atol=1e-7)

    # Regress on tf.Examples through the export's regress signature
    from tensorflow.core.example import example_pb2

    ex = example_pb2.Example()
    rreq = regression_pb2.RegressionRequest(
        model_spec=model_pb2.ModelSpec(name="ranker", signature_name="regress")
    )
    rreq.input.example_list.examples.extend([ex, ex])
    values = [r.value for r in s.predict.Regress(rreq).result.regressions]
    serialized = tf.constant([ex.SerializeToString()] * 2)
    want_scores = loaded.signatures["predict_examples"](inputs=serialized)["scores"].numpy()
    assert len(values) == 2
    np.testing.assert_allclose(values, np.ravel(want_scores), rtol=1e-5, atol=1e-7)  # all-missing rows
    s.channel.close()


def test_real_export_serves_with_keras_blocked(real_export):
    """The trainer writes the export with Keras; serving it needs no Keras (nor TFRS, nor recsys)."""
    from tests.serving.test_imports import _serve_with_keras_blocked

    path, _ = real_export
    report = _serve_with_keras_blocked(os.path.dirname(path), "ranker")
    assert report["blocked"] is True and report["keras_modules"] == [] and report["recsys_modules"] == []
    assert "serving_default" in report["signatures"]
    (name, grpc_values), = report["grpc"].items()
    request = _warmup_request(path)  # what the script sends: the export's first warm-up request
    raw = {k: tf.constant(codec.to_numpy(v)) for k, v in request.inputs.items()}
    want = tf.saved_model.load(path).signatures["serving_default"](**raw)[name].numpy()
    assert len(np.ravel(grpc_values)) == len(np.ravel(want)) > 0
    np.testing.assert_allclose(np.ravel(grpc_values), np.ravel(want), rtol=1e-5, atol=1e-7)
    assert np.ravel(report["rest"]) == pytest.approx(np.ravel(grpc_values), rel=1e-6)


def test_rows_from_the_eval_split_query_like_the_saved_model(real_export, serve, tmp_path):
    """`recsys rows` then `recsys query`, as a user types them (relative paths, their own directory):
    every row is served, and each probability is the SavedModel's on the same eval example."""
    import subprocess
    import sys

    from pipelines import feature_spec
    from recsys.data.input import make_dataset
    from recsys.export.warmup import raw_batch

    path, spec = real_export
    server = serve(models=[single_model_config("ranker", os.path.dirname(path))])
    work = tmp_path / "user"
    work.mkdir()
    data = os.path.relpath(spec.root, work)
    recsys = [sys.executable, "-m", "recsys.cli"]
    made = subprocess.run([*recsys, "rows", f"--data={data}", "--count=40", "--output=rows.jsonl"], cwd=work,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    assert "wrote 40 eval rows to rows.jsonl" in made.stderr
    query = subprocess.run([*recsys, "query", f"--server=127.0.0.1:{server.port}", "--model_name=ranker",
                            "--rows=rows.jsonl", "--output=probability"], cwd=work, capture_output=True,
                           text=True, timeout=120)
    assert query.returncode == 0, query.stderr
    got = np.array([json.loads(line)["probability"] for line in query.stdout.splitlines()], np.float32)
    features, _ = next(iter(make_dataset(feature_spec.load(spec.root), "eval", 40)))
    raw = {k: tf.constant(v) for k, v in raw_batch(features, spec).items()}
    want = tf.saved_model.load(path).signatures["serving_default"](**raw)["probability"].numpy().ravel()
    assert got.shape == (40,)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
