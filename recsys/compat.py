"""TensorFlow and Keras 2 (tf-keras) for the project's code: ``from recsys.compat import tf, keras``.

TFRS 0.7.7 needs Keras 2. TensorFlow picks its Keras at import time from ``TF_USE_LEGACY_KERAS``, so the
variable must be set before the first ``import tensorflow`` anywhere in the process. The top-level
packages set it when they are first imported (``recsys/__init__.py``; ``serving/__init__.py`` and
``pipelines/__init__.py`` as a default), so any first import of a project module selects Keras 2; this
module checks that it worked and says what to do when TensorFlow was loaded with Keras 3 anyway.
"""

from __future__ import annotations

import os
import sys

_HOW_TO_FIX = (
    "recsys needs Keras 2 (the tf-keras package) because TensorFlow Recommenders does. "
    "Set TF_USE_LEGACY_KERAS=1 in the environment before TensorFlow is imported, or import recsys "
    "modules before anything imports tensorflow, and make sure tf-keras==2.21.0 is installed "
    "(pip install -e .)."
)

if "tensorflow" not in sys.modules:
    # TF_USE_LEGACY_KERAS=1 is already set: importing this module ran recsys/__init__.py first.
    # Hide TensorFlow's start-up INFO lines (CPU features, oneDNN); warnings and errors still show.
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1"
        os.environ["RECSYS_DEFAULT_TF_CPP_MIN_LOG_LEVEL"] = "1"  # ours, not the user's (recsys/quiet.py)

import tensorflow as tf  # noqa: E402

try:
    import tf_keras as keras  # noqa: E402
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ImportError(f"tf-keras is not installed. {_HOW_TO_FIX}") from err


def _uses_keras2() -> bool:
    """True when ``tf.keras`` is tf-keras (Keras 2) rather than Keras 3."""
    return tf.keras.layers.Dense is keras.layers.Dense


if not _uses_keras2():
    raise ImportError(f"TensorFlow was imported with Keras 3 active as tf.keras. {_HOW_TO_FIX}")

__all__ = ["tf", "keras"]
