"""Model server with TensorFlow Serving's gRPC and REST APIs, and the replica-divergence monitor.

Loads SavedModels through TensorFlow only (never the project's model code), so any SavedModel in TF
Serving's ``<base_path>/<version>/`` layout can be served.
"""

