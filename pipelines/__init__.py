"""Beam preprocessing: raw logs -> validated TFRecord shards + one feature spec.

This package knows nothing of models or serving and imports neither TensorFlow nor :mod:`recsys`,
so remote Beam workers (Dataflow, Flink, Spark) install it with light dependencies.
"""
