"""A C^2 member of the RESCU family: SmeLU's linear gradient ramp replaced by a smoothstep.

With s = 2 beta and r = clip((x + beta) / s, 0, 1): f'(x) = r^2 (3 - 2r) (smoothstep, so f'' is
continuous), f(x) = s (r^3 - r^4 / 2) + relu(x - beta): 0 for x <= -beta, x for x >= beta.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from recsys.activations.base import ActivationLayer, finite, require
from recsys.activations.kernels import custom_gradient, fusible
from recsys.activations.registry import register
from recsys.compat import tf


@fusible
def _forward(x: tf.Tensor, beta: tf.Tensor) -> tf.Tensor:
    s = 2.0 * beta
    r = tf.clip_by_value((x + beta) / s, 0.0, 1.0)
    r3 = r * r * r
    return s * (r3 - 0.5 * r3 * r) + tf.nn.relu(x - beta)


@fusible
def _grad_x(x: tf.Tensor, beta: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
    r = tf.clip_by_value((x + beta) / (2.0 * beta), 0.0, 1.0)
    return dy * (r * r * (3.0 - 2.0 * r))


@custom_gradient
def _rescu(x: tf.Tensor, beta: tf.Tensor) -> tuple[tf.Tensor, Callable[..., Any]]:
    def grad(dy: tf.Tensor) -> tuple[tf.Tensor | None, ...]:
        return _grad_x(x, beta, dy), None

    return _forward(x, beta), grad


@register("rescu", aliases=("rescu_smoothstep",))
class RescuSmoothstep(ActivationLayer):
    """RESCU with a smoothstep gradient ramp on [-beta, beta]: a C^2 smooth ReLU."""

    def __init__(self, beta: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.beta = finite("beta", beta)
        require(self.beta > 0, f"beta must be > 0 (got {beta!r})")

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return _rescu(inputs, tf.constant(self.beta, inputs.dtype))
