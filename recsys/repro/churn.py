"""Top-k churn: the code lives in :mod:`serving.churn` (serving needs it without the
training stack), re-exported here."""

from serving.churn import (
    topk_churn,
)

__all__ = [
    "topk_churn",
]
