"""Base class of registered activation layers: config from the constructor signature."""

from __future__ import annotations

import inspect
import math
from typing import Any

from recsys.compat import keras, tf


class ActivationLayer(keras.layers.Layer):  # type: ignore[misc]  # Keras is untyped (Any)
    """An elementwise activation as a Keras layer.

    Subclasses store each constructor parameter under the same attribute name; ``get_config`` then
    round-trips them without per-class boilerplate.
    """

    activation_name = "activation"  # set by the registry decorator to the public name

    def __init__(self, **kwargs: Any) -> None:
        # "smelu_3" rather than Keras' class-derived "sme_lu_3".
        if "name" not in kwargs:  # Keras' public per-graph counter, as Keras numbers its own layers
            name = type(self).activation_name
            kwargs["name"] = f"{name}_{keras.backend.get_uid(name)}"
        super().__init__(**kwargs)
        self.supports_masking = True

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        for name, p in inspect.signature(type(self).__init__).parameters.items():
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                config[name] = getattr(self, name)
        return config

    def compute_output_shape(self, input_shape: tf.TensorShape) -> tf.TensorShape:
        return input_shape


def require(condition: bool, message: str) -> None:
    """Raise the ValueError the registry turns into a message listing the parameters."""
    if not condition:
        raise ValueError(message)


def finite(name: str, value: float) -> float:
    require(math.isfinite(value), f"{name} must be finite (got {value!r})")
    return float(value)
