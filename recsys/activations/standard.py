"""Baseline activations (ReLU and the smooth ones the papers compare SmeLU with) as registered layers."""

from __future__ import annotations

from typing import Any

from recsys.activations.base import ActivationLayer, finite, require
from recsys.activations.registry import register
from recsys.compat import tf


@register("relu")
class ReLU(ActivationLayer):
    """max(x, 0): the non-smooth baseline."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.nn.relu(inputs)


@register("leaky_relu")
class LeakyReLU(ActivationLayer):
    """x for x > 0, alpha * x otherwise."""

    def __init__(self, alpha: float = 0.01, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = finite("alpha", alpha)
        require(self.alpha >= 0, f"alpha must be >= 0 (got {alpha!r})")

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.nn.leaky_relu(inputs, alpha=self.alpha)


@register("elu")
class ELU(ActivationLayer):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = finite("alpha", alpha)
        require(self.alpha > 0, f"alpha must be > 0 (got {alpha!r})")

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        if self.alpha == 1.0:
            return tf.nn.elu(inputs)
        return tf.where(inputs > 0, inputs, self.alpha * tf.nn.elu(inputs))


@register("selu")
class SELU(ActivationLayer):
    """Scaled ELU (Klambauer et al.): self-normalising constants."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.nn.selu(inputs)


@register("softplus")
class Softplus(ActivationLayer):
    """(1 / gamma) log(1 + exp(gamma x)); larger gamma is closer to ReLU."""

    def __init__(self, gamma: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gamma = finite("gamma", gamma)
        require(self.gamma > 0, f"gamma must be > 0 (got {gamma!r})")

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        if self.gamma == 1.0:
            return tf.nn.softplus(inputs)
        return tf.nn.softplus(self.gamma * inputs) / self.gamma


@register("swish", aliases=("silu",))
class Swish(ActivationLayer):
    """x * sigmoid(gamma x) (SiLU for gamma = 1)."""

    def __init__(self, gamma: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gamma = finite("gamma", gamma)
        require(self.gamma > 0, f"gamma must be > 0 (got {gamma!r})")

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.nn.silu(inputs, beta=self.gamma)


@register("gelu")
class GELU(ActivationLayer):
    """x * Phi(x), exact (erf) or with the tanh approximation."""

    def __init__(self, approximate: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.approximate = bool(approximate)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.nn.gelu(inputs, approximate=self.approximate)


@register("gelu_tanh", preset={"approximate": True})
class GELUTanh(GELU):
    """GELU with the tanh approximation."""


@register("mish")
class Mish(ActivationLayer):
    """x * tanh(softplus(x)) (Misra 2019)."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return inputs * tf.math.tanh(tf.nn.softplus(inputs))


@register("tanhexp")
class TanhExp(ActivationLayer):
    """x * tanh(exp(x)) (Liu & Di 2020); exp is capped where tanh has saturated, so no inf * 0."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return inputs * tf.math.tanh(tf.math.exp(tf.minimum(inputs, 10.0)))
