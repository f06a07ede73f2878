"""Job submission: a supervised local cluster of worker processes, and Kubernetes manifests for GPU clusters.

Nothing here imports TensorFlow at import time: the submitter only starts, watches and stops processes.
"""
