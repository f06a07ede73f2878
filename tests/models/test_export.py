"""Export: TF Serving layout, signatures, warm-up file, portable graph, fresh-process reload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from recsys import config as cfg
from recsys.compat import tf
from recsys.data import parse_batch
from recsys.export import export_saved_model, raw_batch
from recsys.train import train

RELOAD_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    export_dir, raw_path, examples_path = sys.argv[1:4]
    loaded = tf.saved_model.load(export_dir)
    raw = dict(np.load(raw_path, allow_pickle=True))
    raw = {k: tf.constant(v.astype(np.float32) if v.dtype.kind == "f" else v.astype(bytes))
           for k, v in raw.items()}
    serialized = tf.constant([bytes.fromhex(h) for h in json.load(open(examples_path))])
    out = {
        "signatures": sorted(loaded.signatures.keys()),
        "raw": loaded.signatures["serving_default"](**raw)["probability"].numpy().tolist(),
        "examples": loaded.signatures["predict_examples"](inputs=serialized)["scores"].numpy().tolist(),
        "regress": loaded.signatures["regress"](inputs=serialized)["outputs"].numpy().tolist(),
        "project_modules": sorted(m for m in sys.modules if m.split(".")[0] in ("recsys", "pipelines")),
    }
    print("RESULT " + json.dumps(out))
""")


@pytest.fixture(scope="module")
def exported(tiny_data, tmp_path_factory):
    root, spec = tiny_data
    model_dir = tmp_path_factory.mktemp("export_model")
    exp = cfg.load(
        "synthetic_small",
        [
            f"data.spec_dir={root}",
            "train.steps=20",
            "train.verbose=0",
            "data.batch_size=256",
            "train.checkpoint=false",
            "model.activation=smelu",
            "export.model_name=tiny",
        ],
    )
    result = train(exp, str(model_dir))
    return result, spec


def _eval_rows(spec, n=16):
    """n eval rows as parsed features and as the serialized tf.Examples they came from."""
    files = sorted(tf.io.gfile.glob(spec.path(spec.data.eval_pattern)))
    serialized = next(iter(tf.data.TFRecordDataset(files, compression_type="GZIP").batch(n)))
    features, _ = parse_batch(serialized, spec)
    return features, serialized.numpy().tolist()


def test_layout_and_assets(exported):
    result, spec = exported
    path = result.export_path
    parent, version = os.path.split(path)
    assert os.path.basename(parent) == "tiny" and version == "1"  # the first version of an empty base
    assert os.listdir(parent) == [version]
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    vocab_assets = sorted(os.listdir(os.path.join(path, "assets")))
    assert vocab_assets == sorted(
        os.path.basename(f.vocabulary_file) for f in spec.features if f.encoding == "vocabulary"
    )
    extra = sorted(os.listdir(os.path.join(path, "assets.extra")))
    assert extra == ["config.yaml", "feature_spec.json", "fingerprint.json", "tf_serving_warmup_requests"]


def test_warmup_requests_are_prediction_logs_that_run(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    result, spec = exported
    path = os.path.join(result.export_path, "assets.extra", "tf_serving_warmup_requests")
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    assert len(logs) == 3
    loaded = tf.saved_model.load(result.export_path)
    for log in logs:
        req = log.predict_log.request
        assert req.model_spec.name == "tiny" and req.model_spec.signature_name == "serving_default"
        assert set(req.inputs) == {f.name for f in spec.features}
        inputs = {k: tf.make_ndarray(v) for k, v in req.inputs.items()}
        out = loaded.signatures["serving_default"](**inputs)["probability"].numpy()
        assert out.shape == (2,) and np.all((out > 0) & (out < 1))


def test_signatures_and_method_names(exported):
    result, spec = exported
    out = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "saved_model_cli"),
            "show",
            "--all",
            "--dir",
            result.export_path,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for name in ("serving_default", "predict_examples", "regress"):
        assert f"signature_def['{name}']" in out
    assert "Method name is: tensorflow/serving/regress" in out
    assert "outputs['probability']" in out and "outputs['scores']" in out
    assert "outputs['outputs']" in out and "inputs['inputs']" in out
    for f in spec.features:
        assert f"inputs['{f.name}']" in out
    assert "shape: (-1)" in out and "shape: (16)" not in out


def test_graph_is_portable_no_xla(exported):
    result, _ = exported
    with open(os.path.join(result.export_path, "saved_model.pb"), "rb") as fh:
        blob = fh.read()
    assert b"_XlaMustCompile" not in blob and b"XlaLaunch" not in blob


def test_fresh_process_reload_gives_same_predictions(exported, tmp_path):
    result, spec = exported
    features, serialized = _eval_rows(spec)
    want = result.model(features).numpy().ravel()
    raw = raw_batch(features, spec)
    np.savez(tmp_path / "raw.npz", **raw)
    (tmp_path / "examples.json").write_text(json.dumps([s.hex() for s in serialized]))
    (tmp_path / "reload.py").write_text(RELOAD_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_USE_LEGACY_KERAS")}
    proc = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "reload.py"),
            result.export_path,
            str(tmp_path / "raw.npz"),
            str(tmp_path / "examples.json"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    got = json.loads(line[len("RESULT ") :])
    assert got["project_modules"] == []
    assert got["signatures"] == ["predict_examples", "regress", "serving_default"]
    np.testing.assert_allclose(got["raw"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["examples"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["regress"], want, rtol=1e-5, atol=1e-6)


def test_raw_signature_handles_missing_and_joined_multi_values(exported):
    result, spec = exported
    loaded = tf.saved_model.load(result.export_path)
    names = {f.name: f for f in spec.features}
    raw = {
        n: (tf.constant([np.nan, 1.0]) if f.kind == "numeric" else tf.constant(["", "C1v0"]))
        for n, f in names.items()
    }
    raw["M1"] = tf.constant(["", "M1v1,M1v2,,unknown"])
    out = loaded.signatures["serving_default"](**raw)["probability"].numpy()
    assert out.shape == (2,) and np.all(np.isfinite(out))
    # the same rows through the in-process model with ragged multi values agree
    feats = dict(raw)
    feats["M1"] = tf.ragged.constant(
        [[], ["M1v1", "M1v2", "unknown"]], dtype=tf.string, row_splits_dtype=tf.int64
    )
    np.testing.assert_allclose(out, result.model(feats).numpy().ravel(), rtol=1e-5)


def test_explicit_version_collision_is_an_error(exported, tmp_path):
    result, spec = exported
    export_saved_model(result.model, spec, str(tmp_path), "m", version=3)
    with pytest.raises(FileExistsError, match="version 3 already exists"):
        export_saved_model(result.model, spec, str(tmp_path), "m", version=3)


def test_default_versions_count_up_from_the_largest_and_never_overwrite(exported, tmp_path):
    """Not the clock: 1 in an empty base, then one more than the largest ASCII-digit version (an export
    still being written counts); two exports in one second get 1 and 2; the weights digest is the same."""
    from recsys.repro.compare import export_weights_digest

    result, spec = exported
    first = export_saved_model(result.model, spec, str(tmp_path), "m")
    second = export_saved_model(result.model, spec, str(tmp_path), "m")
    assert [os.path.basename(first), os.path.basename(second)] == ["1", "2"]
    digest = result.fingerprint["weights_sha256"]
    assert export_weights_digest(first) == export_weights_digest(second) == digest
    for name in ("9", "٣٣", "notes", ".tmp-11-123"):  # a version, Arabic digits, other, an export underway
        os.makedirs(tmp_path / "m" / name)
    assert os.path.basename(export_saved_model(result.model, spec, str(tmp_path), "m")) == "12"
    assert os.path.basename(export_saved_model(result.model, spec, str(tmp_path), "m", version=5)) == "5"
    assert sorted(os.listdir(tmp_path / "m")) == [".tmp-11-123", "1", "12", "2", "5", "9", "notes", "٣٣"]


def test_a_version_taken_while_the_export_was_written_is_not_overwritten(tmp_path):
    """The last step (rename) never replaces a version: an explicit one is refused, the default moves on."""
    from recsys.export.saved_model import _publish

    root = tmp_path / "m"
    for name in ("3", "tmp_a", "tmp_b"):
        os.makedirs(root / name)
    (root / "3" / "saved_model.pb").write_bytes(b"theirs")
    (root / "tmp_a" / "saved_model.pb").write_bytes(b"ours")
    with pytest.raises(FileExistsError, match="export version 3 already exists"):
        _publish(str(root / "tmp_a"), str(root), 3, explicit=True)
    assert not (root / "tmp_a").exists() and (root / "3" / "saved_model.pb").read_bytes() == b"theirs"
    (root / "tmp_b" / "saved_model.pb").write_bytes(b"ours")
    assert _publish(str(root / "tmp_b"), str(root), 3, explicit=False) == str(root / "4")
    assert (root / "4" / "saved_model.pb").read_bytes() == b"ours"
    assert (root / "3" / "saved_model.pb").read_bytes() == b"theirs"


def test_a_model_built_under_a_strategy_is_refused(exported, tmp_path):
    """The export saves the model it is given, so it must be the strategy-free copy (saving the
    distributed one would run collectives); nothing is written for a refused model."""
    from recsys.models import RankingModel

    result, spec = exported
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        distributed = RankingModel(spec, result.config.model)
        distributed.build_from_spec()
    with pytest.raises(RuntimeError, match="strategy-free copy"):
        export_saved_model(distributed, spec, str(tmp_path), "m", version=1)
    assert not os.path.exists(tmp_path / "m")
