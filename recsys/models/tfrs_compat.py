"""TensorFlow Recommenders, imported only after :mod:`recsys.compat` has selected Keras 2.

Import ``tfrs`` from here, never ``tensorflow_recommenders`` directly: an import sorter would put the
third-party import above ``recsys.compat`` and TFRS would then see Keras 3.
"""

# ruff: noqa: I001
from recsys.compat import tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TFRS loads TensorFlow)
import tensorflow_recommenders as tfrs  # noqa: E402

__all__ = ["tfrs"]
