"""Closed-form and autodiff gradients against numerical differentiation, for every registered activation
and every learnable parameter."""

from __future__ import annotations

import numpy as np
import pytest

from recsys import activations
from recsys.activations import gsmelu as gsmelu_mod
from recsys.activations import smelu as smelu_mod
from recsys.compat import keras, tf

# Points away from the kinks of ReLU / leaky ReLU (0) and of the transitions' ends (+-1, +-0.7, ...),
# where a one-sided numerical derivative is not the derivative.
X = np.array([-3.1, -1.3, -0.83, -0.41, -0.17, 0.13, 0.37, 0.66, 0.91, 1.7, 2.9])


def _f64_layer(spec):
    layer = activations.get(spec)
    return type(layer).from_config({**layer.get_config(), "dtype": "float64"})


@pytest.mark.parametrize("name", activations.names())
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "portable"])
def test_input_gradient_matches_numerical(name, fused):
    layer = _f64_layer(name)

    def f(x):
        if fused:
            return layer(x)
        with activations.portable_kernels():
            return layer(x)

    theoretical, numerical = tf.test.compute_gradient(f, [tf.constant(X, tf.float64)], delta=1e-6)
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("per_unit", [False, True])
def test_smelu_beta_gradient_matches_numerical(per_unit):
    x = tf.constant(X.reshape(-1, 1) * np.ones((1, 3)) + np.array([0.0, 0.05, -0.05]), tf.float64)
    beta = tf.constant([0.8, 1.1, 2.3] if per_unit else 1.2, tf.float64)
    theoretical, numerical = tf.test.compute_gradient(
        lambda x, b: smelu_mod.smelu(x, b), [x, beta], delta=1e-6
    )
    for t, n in zip(theoretical, numerical, strict=True):
        np.testing.assert_allclose(t, n, rtol=1e-5, atol=1e-7)
    # The doc's closed form: df/dbeta = (beta^2 - x^2) / (4 beta^2) inside the transition, else 0.
    b = 1.2
    x1 = X[np.abs(X) < b]
    expected = (b * b - x1 * x1) / (4 * b * b)
    grads = []
    for xi in x1:
        var = tf.Variable(b, dtype=tf.float64)
        with tf.GradientTape() as tape:
            y = smelu_mod.smelu(tf.constant([xi], tf.float64), var)
        grads.append(tape.gradient(y, var).numpy())
    np.testing.assert_allclose(grads, expected, rtol=1e-7)


@pytest.mark.parametrize("per_unit", [False, True])
@pytest.mark.parametrize(
    "params",
    [
        (1.0, 1.0, 0.0, 1.0, 0.0),  # SmeLU
        (0.4, 1.3, 0.05, 1.2, 0.3),  # asymmetric, leaky, offset
        (0.9, 0.2, 0.5, -0.2, -0.1),  # concave (g+ < g-)
    ],
)
def test_gsmelu_all_parameter_gradients_match_numerical(params, per_unit):
    x = tf.constant(X.reshape(-1, 1) * np.ones((1, 2)) + np.array([0.0, 0.03]), tf.float64)
    shape = (2,) if per_unit else ()
    tensors = [
        tf.constant(np.full(shape, p) * (1 + 0.1 * np.arange(2) if per_unit else 1.0), tf.float64)
        for p in params
    ]
    theoretical, numerical = tf.test.compute_gradient(
        lambda x, *p: gsmelu_mod.gsmelu(x, *p), [x, *tensors], delta=1e-6
    )
    names = ["x", "alpha", "beta", "g_minus", "g_plus", "t"]
    for name, t, n in zip(names, theoretical, numerical, strict=True):
        np.testing.assert_allclose(t, n, rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize(
    "spec",
    [
        "smelu_learnable(beta=0.7)",
        "smelu_learnable(beta=0.7, per_unit=True)",
        "gsmelu(alpha=0.5, beta=0.8, g_minus=0.1, t=0.2, learnable=True)",
        "gsmelu(alpha=0.5, beta=0.8, g_minus=0.1, learnable=True, per_unit=True)",
    ],
)
def test_learnable_layer_variable_gradients_match_finite_differences(spec):
    """Gradients reach the raw variables through the positivity reparameterisation."""
    layer = _f64_layer(spec)
    x = tf.constant(X.reshape(-1, 1) * np.ones((1, 3)) + np.array([0.0, 0.02, -0.04]), tf.float64)
    layer(x)  # build
    loss = lambda: tf.reduce_sum(layer(x) ** 2)  # noqa: E731
    with tf.GradientTape() as tape:
        value = loss()
    grads = tape.gradient(value, layer.trainable_variables)
    assert len(grads) == (1 if "smelu_learnable" in spec else 5)
    eps = 1e-6
    for var, grad in zip(layer.trainable_variables, grads, strict=True):
        flat = var.numpy().reshape(-1)
        numerical = []
        for i in range(flat.size):
            for sign in (1, -1):
                bumped = flat.copy()
                bumped[i] += sign * eps
                var.assign(bumped.reshape(var.shape))
                numerical.append(loss().numpy())
            var.assign(flat.reshape(var.shape))
        numerical = (np.array(numerical[0::2]) - np.array(numerical[1::2])) / (2 * eps)
        np.testing.assert_allclose(grad.numpy().reshape(-1), numerical, rtol=1e-5, atol=1e-6,
                                   err_msg=var.name)
        assert np.any(np.abs(numerical) > 1e-3), var.name  # a real signal, not 0 == 0


def test_learnable_beta_stays_positive_and_moves():
    layer = activations.get("smelu_learnable(beta=0.05, per_unit=True)")
    x = tf.random.stateless_normal([256, 4], seed=[1, 2])
    opt = keras.optimizers.SGD(5.0)
    for _ in range(50):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(layer(x))  # pushes beta up (f grows with beta at x = 0)
        opt.apply_gradients(zip(tape.gradient(loss, layer.trainable_variables),
                                layer.trainable_variables, strict=True))
    beta = layer.current_beta().numpy()
    assert np.all(beta > 0.05) and np.all(np.isfinite(beta))
    for _ in range(200):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(layer(x))  # pushes beta down towards its floor
        opt.apply_gradients(zip(tape.gradient(loss, layer.trainable_variables),
                                layer.trainable_variables, strict=True))
    assert np.all(layer.current_beta().numpy() >= layer.min_beta)
