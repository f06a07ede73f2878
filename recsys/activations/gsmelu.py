"""Generalised SmeLU (gSmeLU): slope g- left of -alpha, g+ right of beta, linear gradient ramp between.

With s = alpha + beta, z = clip(x + alpha, 0, s), r = z / s and h = z^2 / (2s) + relu(x - beta):
    f(x) = t + g- (x + alpha) + (g+ - g-) h          (t = f(-alpha))
    df/dx = g- + (g+ - g-) r
    df/dalpha = g- + (g+ - g-)(r - r^2 / 2),  df/dbeta = -(g+ - g-) r^2 / 2
    df/dg- = (x + alpha) - h,  df/dg+ = h,  df/dt = 1
g- = 0, g+ = 1, alpha = beta, t = 0 is SmeLU exactly. Every parameter can be learned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from recsys.activations.base import ActivationLayer, finite, require
from recsys.activations.kernels import custom_gradient, fusible, reduce_to_shape
from recsys.activations.registry import register
from recsys.activations.smelu import _softplus_inverse
from recsys.compat import keras, tf


@fusible
def _forward(
    x: tf.Tensor, alpha: tf.Tensor, beta: tf.Tensor, g_minus: tf.Tensor, g_plus: tf.Tensor, t: tf.Tensor
) -> tf.Tensor:
    s = alpha + beta
    xa = x + alpha
    z = tf.clip_by_value(xa, tf.zeros_like(s), s)
    h = z * z / (2.0 * s) + tf.nn.relu(x - beta)
    return t + g_minus * xa + (g_plus - g_minus) * h


@fusible
def _grad_x(
    x: tf.Tensor, alpha: tf.Tensor, beta: tf.Tensor, g_minus: tf.Tensor, g_plus: tf.Tensor, dy: tf.Tensor
) -> tf.Tensor:
    s = alpha + beta
    r = tf.clip_by_value(x + alpha, tf.zeros_like(s), s) / s
    return dy * (g_minus + (g_plus - g_minus) * r)


@fusible
def _grad_all(
    x: tf.Tensor, alpha: tf.Tensor, beta: tf.Tensor, g_minus: tf.Tensor, g_plus: tf.Tensor, dy: tf.Tensor
) -> tuple[tf.Tensor, ...]:
    s = alpha + beta
    xa = x + alpha
    z = tf.clip_by_value(xa, tf.zeros_like(s), s)
    r = z / s
    h = z * z / (2.0 * s) + tf.nn.relu(x - beta)
    dg = g_plus - g_minus
    gx = dy * (g_minus + dg * r)
    ga = dy * (g_minus + dg * (r - 0.5 * r * r))
    gb = dy * (-0.5 * dg * r * r)
    gm = dy * (xa - h)
    gp = dy * h
    return gx, ga, gb, gm, gp


@custom_gradient
def _gsmelu(
    x: tf.Tensor, alpha: tf.Tensor, beta: tf.Tensor, g_minus: tf.Tensor, g_plus: tf.Tensor, t: tf.Tensor
) -> tuple[tf.Tensor, Callable[..., Any]]:
    def grad(dy: tf.Tensor) -> tuple[tf.Tensor | None, ...]:
        return _grad_x(x, alpha, beta, g_minus, g_plus, dy), None, None, None, None, None

    return _forward(x, alpha, beta, g_minus, g_plus, t), grad


@custom_gradient
def _gsmelu_learnable(
    x: tf.Tensor, alpha: tf.Tensor, beta: tf.Tensor, g_minus: tf.Tensor, g_plus: tf.Tensor, t: tf.Tensor
) -> tuple[tf.Tensor, Callable[..., Any]]:
    def grad(dy: tf.Tensor) -> tuple[tf.Tensor | None, ...]:
        gx, *partials = _grad_all(x, alpha, beta, g_minus, g_plus, dy)
        params = (alpha, beta, g_minus, g_plus, t)
        grads = [
            tf.cast(reduce_to_shape(tf.cast(g, tf.float32), p.shape), p.dtype)
            for g, p in zip((*partials, dy), params, strict=True)
        ]
        return (gx, *grads)

    return _forward(x, alpha, beta, g_minus, g_plus, t), grad


_NAMES = ("alpha", "beta", "g_minus", "g_plus", "t")


def gsmelu(
    x: tf.Tensor,
    alpha: float | tf.Tensor,
    beta: float | tf.Tensor,
    g_minus: float | tf.Tensor,
    g_plus: float | tf.Tensor,
    t: float | tf.Tensor,
) -> tf.Tensor:
    """gSmeLU of ``x`` with tensor parameters (scalars or per-unit vectors), all differentiable."""
    x = tf.convert_to_tensor(x)
    params = [tf.cast(p, x.dtype) for p in (alpha, beta, g_minus, g_plus, t)]
    return _gsmelu_learnable(x, *params)


@register("gsmelu", aliases=("generalized_smelu",))
class GSmeLU(ActivationLayer):
    """Generalised SmeLU: slopes g_minus / g_plus joined by a linear gradient ramp on [-alpha, beta]."""

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 1.0,
        g_minus: float = 0.0,
        g_plus: float = 1.0,
        t: float = 0.0,
        learnable: bool = False,
        per_unit: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.alpha = finite("alpha", alpha)
        self.beta = finite("beta", beta)
        self.g_minus = finite("g_minus", g_minus)
        self.g_plus = finite("g_plus", g_plus)
        self.t = finite("t", t)
        self.learnable = bool(learnable)
        self.per_unit = bool(per_unit)
        require(self.alpha >= 0, f"alpha must be >= 0 (got {alpha!r})")
        require(self.beta >= 0, f"beta must be >= 0 (got {beta!r})")
        require(self.alpha + self.beta > 0, "alpha + beta must be > 0 (got 0): the ramp needs width")
        require(not self.per_unit or self.learnable, "per_unit needs learnable=True")

    def build(self, input_shape: tf.TensorShape) -> None:
        if self.learnable:
            shape = (int(input_shape[-1]),) if self.per_unit else ()
            # alpha, beta >= 0 through softplus; beta keeps a small floor so alpha + beta > 0.
            init = {
                "alpha": _softplus_inverse(max(self.alpha, 1e-4)),
                "beta": _softplus_inverse(max(self.beta - 1e-4, 1e-4)),
                "g_minus": self.g_minus,
                "g_plus": self.g_plus,
                "t": self.t,
            }
            self.raw = {
                n: self.add_weight(
                    name=n if n in ("g_minus", "g_plus", "t") else f"{n}_rho",
                    shape=shape,
                    initializer=keras.initializers.Constant(v),
                    trainable=True,
                )
                for n, v in init.items()
            }
        super().build(input_shape)

    def current_params(self) -> dict[str, tf.Tensor]:
        """alpha, beta, g_minus, g_plus, t as applied now (float32)."""
        if not self.learnable:
            return {n: tf.constant(getattr(self, n), tf.float32) for n in _NAMES}
        return {
            "alpha": tf.nn.softplus(self.raw["alpha"]),
            "beta": tf.nn.softplus(self.raw["beta"]) + 1e-4,
            "g_minus": tf.convert_to_tensor(self.raw["g_minus"]),
            "g_plus": tf.convert_to_tensor(self.raw["g_plus"]),
            "t": tf.convert_to_tensor(self.raw["t"]),
        }

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        dtype = inputs.dtype
        if not self.learnable:
            consts = [tf.constant(getattr(self, n), dtype) for n in _NAMES]
            return _gsmelu(inputs, *consts)
        p = self.current_params()
        return _gsmelu_learnable(inputs, *[tf.cast(p[n], dtype) for n in _NAMES])
