"""The smooth activations where they really run: mixed precision, XLA, tf.distribute, SavedModel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from recsys import activations
from recsys.compat import keras, tf

SMOOTH = [
    "smelu(beta=0.5)",
    "smelu_learnable(beta=0.7, per_unit=True)",
    "gsmelu(alpha=0.3, beta=0.6, g_minus=0.05, learnable=True)",
    "rescu(beta=0.8)",
    "gelu",
]


def _layer(spec, dtype):
    layer = activations.get(spec)
    return type(layer).from_config({**layer.get_config(), "dtype": dtype})


@pytest.mark.parametrize("policy, rtol", [("mixed_float16", 2e-3), ("mixed_bfloat16", 1.6e-2)])
@pytest.mark.parametrize("spec", SMOOTH)
@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_mixed_precision_matches_float32(spec, policy, rtol, jit):
    x = tf.constant(np.random.default_rng(3).normal(size=(64, 8)) * 2, tf.float32)
    ref, low = _layer(spec, "float32"), _layer(spec, policy)
    ref(x), low(x)
    low.set_weights(ref.get_weights())

    @tf.function(jit_compile=jit)
    def run(layer, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
        return y, tape.gradient(loss, [x, *layer.trainable_variables])

    y32, g32 = run(ref, x)
    y16, g16 = run(low, x)
    assert y16.dtype == tf.as_dtype(policy.split("_")[1])
    for v in low.trainable_variables:
        assert v.dtype == tf.float32  # variables stay float32 under a mixed policy
    np.testing.assert_allclose(tf.cast(y16, tf.float32), y32, rtol=rtol, atol=rtol)
    for a, b in zip(g16, g32, strict=True):
        assert np.all(np.isfinite(a.numpy()))
        scale = np.abs(b.numpy()).max() + 1e-6
        np.testing.assert_allclose(a.numpy() / scale, b.numpy() / scale, atol=4 * rtol)


def test_fused_kernels_compile_with_xla_and_portable_mode_does_not():
    layer = activations.get("smelu")
    spec = tf.TensorSpec([None, 4], tf.float32)
    fused = tf.function(lambda x: layer(x)).get_concrete_function(spec)
    with activations.portable_kernels():
        assert not activations.fusion_enabled()
        portable = tf.function(lambda x: layer(x)).get_concrete_function(spec)
    assert activations.fusion_enabled()
    assert _must_compile_count(fused.graph.as_graph_def()) >= 1
    assert _must_compile_count(portable.graph.as_graph_def()) == 0
    x = tf.random.normal([16, 4])
    np.testing.assert_array_equal(fused(x).numpy(), portable(x).numpy())


def _must_compile_count(graph_def) -> int:
    """Functions (or nodes) marked for mandatory XLA compilation anywhere in a GraphDef."""
    count = sum(1 for n in graph_def.node if n.attr["_XlaMustCompile"].b)
    for fn in graph_def.library.function:
        count += int(fn.attr["_XlaMustCompile"].b)
        count += sum(1 for n in fn.node_def if n.attr["_XlaMustCompile"].b)
    return count


_DISTRIBUTED = textwrap.dedent(
    """
    import json, sys
    from recsys.compat import tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from recsys import activations
    import numpy as np

    def train(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(7)
            model = keras.Sequential([
                keras.layers.Dense(16, input_shape=(6,)),
                activations.get("smelu_learnable(beta=0.5, per_unit=True)"),
                keras.layers.Dense(16),
                activations.get("gsmelu(alpha=0.4, g_minus=0.1, learnable=True)"),
                keras.layers.Dense(1),
            ])
            model.compile(keras.optimizers.SGD(0.05), loss="mse")
        rng = np.random.default_rng(0)
        x = rng.normal(size=(256, 6)).astype("float32")
        y = (np.sin(x[:, :1]) + x[:, 1:2] ** 2).astype("float32")
        hist = model.fit(x, y, batch_size=64, epochs=3, shuffle=False, verbose=0)
        return model.get_weights(), hist.history["loss"]

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    w2, loss2 = train(mirrored)
    w1, loss1 = train(tf.distribute.get_strategy())
    diff = max(float(np.abs(a - b).max()) for a, b in zip(w1, w2))
    print(json.dumps({"diff": diff, "loss1": loss1, "loss2": loss2}))
    """
)


def test_learnable_activations_train_identically_under_mirrored_strategy():
    proc = subprocess.run(
        [sys.executable, "-c", _DISTRIBUTED], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["loss2"][-1] < result["loss2"][0]  # it learns
    np.testing.assert_allclose(result["loss1"], result["loss2"], rtol=1e-4)
    assert result["diff"] < 1e-4  # two replicas with all-reduced gradients == one device


_RELOAD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    assert "recsys" not in sys.modules
    loaded = tf.saved_model.load(sys.argv[1])
    x = np.load(sys.argv[2])
    out = loaded.signatures["serving_default"](x=tf.constant(x))
    grad_fn = loaded.value_and_grad
    y, g = grad_fn(tf.constant(x))
    print(json.dumps({"y": out["y"].numpy().tolist(), "g": g.numpy().tolist(),
                      "recsys_imported": any(m.startswith("recsys") for m in sys.modules)}))
    """
)


def test_saved_model_reloads_without_the_project(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    h = inputs
    for spec in SMOOTH:
        h = activations.get(spec)(keras.layers.Dense(6)(h))
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    x = np.random.default_rng(1).normal(size=(9, 6)).astype("float32")

    class Exported(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32)])
        def serve(self, x):
            return {"y": self.model(x)}

        @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32)])
        def value_and_grad(self, x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.reduce_sum(self.model(x))
            return y, tape.gradient(y, x)

    module = Exported(model)
    path = str(tmp_path / "model")
    with activations.portable_kernels():
        tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    np.save(tmp_path / "x.npy", x)

    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as fh:
        proto.ParseFromString(fh.read())
    assert _must_compile_count(proto.meta_graphs[0].graph_def) == 0  # stock TF Serving can run it

    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    proc = subprocess.run(
        [sys.executable, "-c", _RELOAD, path, str(tmp_path / "x.npy")],
        capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["recsys_imported"] is False
    np.testing.assert_allclose(result["y"], model(x).numpy(), rtol=1e-5, atol=1e-6)
    with tf.GradientTape() as tape:
        xt = tf.constant(x)
        tape.watch(xt)
        y = tf.reduce_sum(model(xt))
    np.testing.assert_allclose(result["g"], tape.gradient(y, xt).numpy(), rtol=1e-4, atol=1e-6)
