"""Model server with TensorFlow Serving's gRPC and REST APIs, and the replica-divergence monitor.

Loads SavedModels through TensorFlow only (never the project's model code), so any SavedModel in TF
Serving's ``<base_path>/<version>/`` layout can be served.
"""

import os as _os

# Keras 2 unless the environment says otherwise: serving never uses Keras, but a process that imports
# serving first and recsys (training, TFRS) later must not have loaded TensorFlow with Keras 3.
# TensorFlow reads the variable at its import; no TensorFlow import here (see recsys/compat.py).
_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
