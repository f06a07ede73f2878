"""SmeLU (Smooth ReLU, Shamir & Lin 2020/2022) with a closed-form gradient, fixed or learnable beta.

f(x) = 0 for x <= -b; (x + b)^2 / (4b) for |x| < b; x for x >= b.  f'(x) = clip((x + b) / (2b), 0, 1).
Branch-free: with c = clip(x, -b, b), f = (c + b)^2 / (4b) + relu(x - b) and f' = (c + b) / (2b);
df/db = (b^2 - c^2) / (4 b^2), which is 0 outside the transition because there c = +-b.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from recsys.activations.base import ActivationLayer, finite, require
from recsys.activations.kernels import custom_gradient, fusible, reduce_to_shape
from recsys.activations.registry import register
from recsys.compat import keras, tf


@fusible
def _forward(x: tf.Tensor, beta: tf.Tensor) -> tf.Tensor:
    c = tf.clip_by_value(x, -beta, beta) + beta
    return c * c * (0.25 / beta) + tf.nn.relu(x - beta)


@fusible
def _grad_x(x: tf.Tensor, beta: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
    return dy * ((tf.clip_by_value(x, -beta, beta) + beta) * (0.5 / beta))


@fusible
def _grad_x_beta(x: tf.Tensor, beta: tf.Tensor, dy: tf.Tensor) -> tuple[tf.Tensor, ...]:
    c = tf.clip_by_value(x, -beta, beta)
    inv = 0.5 / beta
    gx = dy * ((c + beta) * inv)
    gb = dy * ((beta * beta - c * c) * (inv * inv))
    return gx, gb


@custom_gradient
def _smelu(x: tf.Tensor, beta: tf.Tensor) -> tuple[tf.Tensor, Callable[..., Any]]:
    def grad(dy: tf.Tensor) -> tuple[tf.Tensor | None, ...]:
        return _grad_x(x, beta, dy), None

    return _forward(x, beta), grad


@custom_gradient
def _smelu_learnable(x: tf.Tensor, beta: tf.Tensor) -> tuple[tf.Tensor, Callable[..., Any]]:
    def grad(dy: tf.Tensor) -> tuple[tf.Tensor | None, ...]:
        gx, gb = _grad_x_beta(x, beta, dy)
        gb = reduce_to_shape(tf.cast(gb, tf.float32), beta.shape)
        return gx, tf.cast(gb, beta.dtype)

    return _forward(x, beta), grad


def smelu(x: tf.Tensor, beta: float | tf.Tensor = 1.0) -> tf.Tensor:
    """SmeLU of ``x``. ``beta`` (> 0) is a scalar or a per-unit vector along the last axis.

    A float beta is a constant (no gradient); a tensor beta gets the closed-form gradient.
    """
    x = tf.convert_to_tensor(x)
    if isinstance(beta, int | float):
        if not beta > 0:
            raise ValueError(f"beta must be > 0 (got {beta!r}); beta -> 0 is ReLU: use 'relu'")
        return _smelu(x, tf.constant(beta, x.dtype))
    return _smelu_learnable(x, tf.cast(beta, x.dtype))


@register("smelu", aliases=("smooth_relu",))
class SmeLU(ActivationLayer):
    """Smooth ReLU: quadratic transition of half-width beta between 0 and identity."""

    def __init__(self, beta: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.beta = finite("beta", beta)
        require(self.beta > 0, f"beta must be > 0 (got {beta!r}); beta -> 0 is ReLU: use 'relu'")

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return _smelu(inputs, tf.constant(self.beta, inputs.dtype))


def _softplus_inverse(y: float) -> float:
    return y + math.log(-math.expm1(-y))


@register("smelu_learnable", aliases=("learnable_smelu",))
class LearnableSmeLU(ActivationLayer):
    """SmeLU with trainable beta = softplus(rho) + min_beta (kept positive), per layer or per unit."""

    def __init__(
        self, beta: float = 1.0, per_unit: bool = False, min_beta: float = 1e-3, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.beta = finite("beta", beta)
        self.per_unit = bool(per_unit)
        self.min_beta = finite("min_beta", min_beta)
        require(self.min_beta > 0, f"min_beta must be > 0 (got {min_beta!r})")
        require(
            self.beta > self.min_beta,
            f"beta must be > min_beta = {self.min_beta} (got {beta!r})",
        )

    def build(self, input_shape: tf.TensorShape) -> None:
        shape = (int(input_shape[-1]),) if self.per_unit else ()
        self.rho = self.add_weight(
            name="rho",
            shape=shape,
            initializer=keras.initializers.Constant(_softplus_inverse(self.beta - self.min_beta)),
            trainable=True,
        )
        super().build(input_shape)

    def current_beta(self) -> tf.Tensor:
        """The positive beta the layer applies now (float32)."""
        return tf.nn.softplus(self.rho) + self.min_beta

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return _smelu_learnable(inputs, tf.cast(self.current_beta(), inputs.dtype))
