"""Golden numbers of the smooth activations: the shared doc's test vectors, in every execution mode."""

from __future__ import annotations

import numpy as np
import pytest

from recsys import activations
from recsys.compat import tf

X = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]
SMELU_B1 = [0.0, 0.0, 0.0625, 0.25, 0.5625, 1.0, 2.0]
SMELU_B1_GRAD = [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
SMELU_B2 = [0.0, 0.125, 0.28125, 0.5, 0.78125, 1.125, 2.0]
SMELU_B2_GRAD = [0.0, 0.25, 0.375, 0.5, 0.625, 0.75, 1.0]


def _value_and_grad(layer, x, mode: str):
    """y and dy/dx of an elementwise layer in eager, graph, XLA or portable-graph mode."""

    def fn(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return y, tape.gradient(y, x)

    x = tf.constant(x, tf.float32)
    if mode == "eager":
        y, g = fn(x)
    elif mode == "portable":
        with activations.portable_kernels():
            y, g = tf.function(fn)(x)
    else:
        y, g = tf.function(fn, jit_compile=(mode == "xla"))(x)
    return y.numpy(), g.numpy()


MODES = ["eager", "graph", "xla", "portable"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "spec, values, grads",
    [
        ("smelu", SMELU_B1, SMELU_B1_GRAD),
        ("smelu(beta=2)", SMELU_B2, SMELU_B2_GRAD),
        ({"name": "smelu", "beta": 2}, SMELU_B2, SMELU_B2_GRAD),
        ("smelu_learnable(beta=2.0)", SMELU_B2, SMELU_B2_GRAD),
        # gSmeLU with SmeLU's parameters is SmeLU exactly.
        ("gsmelu(alpha=2, beta=2, g_minus=0, g_plus=1)", SMELU_B2, SMELU_B2_GRAD),
        ("gsmelu(alpha=2, beta=2, learnable=True)", SMELU_B2, SMELU_B2_GRAD),
    ],
)
def test_smelu_test_vectors(spec, values, grads, mode):
    y, g = _value_and_grad(activations.get(spec), X, mode)
    np.testing.assert_allclose(y, values, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(g, grads, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("mode", MODES)
def test_gsmelu_leaky_vectors(mode):
    # Doc vector: g+=1, g-=0.01, alpha=beta=0.1, left intercept t0 = t + g- alpha = 0.
    layer = activations.get("gsmelu(alpha=0.1, beta=0.1, g_minus=0.01, g_plus=1, t=-0.001)")
    y, g = _value_and_grad(layer, [-1.0, -0.1, 0.0, 0.05, 0.1, 1.0], mode)
    np.testing.assert_allclose(y, [-0.01, -0.001, 0.02475, 0.056188, 0.1, 1.0], atol=2e-6)
    np.testing.assert_allclose(g, [0.01, 0.01, 0.505, 0.7525, 1.0, 1.0], atol=2e-6)


@pytest.mark.parametrize("mode", MODES)
def test_gsmelu_asymmetric_vectors(mode):
    layer = activations.get("gsmelu(alpha=1, beta=2, g_minus=0, g_plus=1)")
    y, g = _value_and_grad(layer, [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0], mode)
    np.testing.assert_allclose(y, [0.0, 0.0, 1 / 6, 2 / 3, 1.5, 2.5], atol=2e-6)
    # The gradient ramps linearly from 0 at -alpha to 1 at beta.
    np.testing.assert_allclose(g, [0.0, 0.0, 1 / 3, 2 / 3, 1.0, 1.0], atol=2e-6)


@pytest.mark.parametrize("mode", MODES)
def test_rescu_smoothstep_values(mode):
    y, g = _value_and_grad(activations.get("rescu"), [-2.0, -1.0, 0.0, 0.5, 1.0, 3.0], mode)
    # s = 2, r = (x + 1) / 2: f = 2 (r^3 - r^4 / 2), f' = r^2 (3 - 2 r).
    np.testing.assert_allclose(y, [0.0, 0.0, 0.1875, 0.52734375, 1.0, 3.0], atol=2e-6)
    np.testing.assert_allclose(g, [0.0, 0.0, 0.5, 0.84375, 1.0, 1.0], atol=2e-6)


def _grad_f64(spec, xs):
    layer = activations.get(spec)
    layer = type(layer).from_config({**layer.get_config(), "dtype": "float64"})
    x = tf.constant(xs, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    return tape.gradient(y, x).numpy()


def test_rescu_is_c2_and_smelu_is_only_c1():
    """f'' of RESCU is continuous at x = beta; SmeLU's jumps there from 1/(2 beta) to 0."""
    eps = 1e-3
    xs = [1 - 2 * eps, 1 - eps, 1 + eps, 1 + 2 * eps]
    d_rescu = np.diff(_grad_f64("rescu", xs)) / eps
    d_smelu = np.diff(_grad_f64("smelu", xs)) / eps
    assert abs(d_rescu[0]) < 1e-2 and abs(d_rescu[2]) < 1e-2
    assert d_smelu[0] == pytest.approx(0.5, abs=1e-6)
    assert d_smelu[2] == pytest.approx(0.0, abs=1e-9)


def test_smelu_bounds_relu_with_gap_beta_over_four():
    x = tf.linspace(-5.0, 5.0, 2001)
    for beta in (0.25, 1.0, 3.0):
        y = activations.get({"name": "smelu", "beta": beta})(x).numpy()
        gap = y - np.maximum(x.numpy(), 0.0)
        assert gap.min() >= -1e-6
        assert gap.max() == pytest.approx(beta / 4, rel=1e-4)
        assert np.all(np.diff(y) >= -1e-7)  # monotone


def test_float_beta_function_rejects_zero():
    with pytest.raises(ValueError, match="beta must be > 0"):
        activations.smelu_fn(tf.constant([1.0]), 0.0)
