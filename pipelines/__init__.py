"""Beam preprocessing: raw logs -> validated TFRecord shards + one feature spec.

This package knows nothing of models or serving and imports neither TensorFlow nor :mod:`recsys`,
so remote Beam workers (Dataflow, Flink, Spark) install it with light dependencies.
"""

import os as _os

# Keras 2 unless the environment says otherwise: pipelines.columnar uses TensorFlow, and a process
# that imports pipelines first and recsys (training, TFRS) later must not have loaded TensorFlow with
# Keras 3. TensorFlow reads the variable at its import; no TensorFlow import here (see recsys/compat.py).
_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
