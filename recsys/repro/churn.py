"""Top-k churn: the numpy core lives in :mod:`serving.churn` (no TensorFlow), re-exported here."""

from serving.churn import topk_churn  # noqa: F401
