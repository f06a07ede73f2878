"""Prediction difference (PD) between replicas: the reproducibility metrics of the project.

numpy functions in :mod:`recsys.repro.pd` (offline, the study and the monitor), a streaming Keras metric
in :mod:`recsys.repro.metrics`, slices and top-k churn, and the TensorBoard tags and layout shared by the
study and the replica-divergence monitor in :mod:`recsys.repro.summaries`.
"""

from recsys.repro.churn import topk_churn
from recsys.repro.pd import (
    PairStats,
    PDDistribution,
    PDSummary,
    absolute_pd,
    pairwise_pd,
    pd_distribution,
    per_example_relative_difference,
    relative_pd,
)
from recsys.repro.slices import pd_by_prediction_bucket, pd_by_slice

__all__ = [
    "PDDistribution",
    "PDSummary",
    "PairStats",
    "absolute_pd",
    "pairwise_pd",
    "pd_by_prediction_bucket",
    "pd_by_slice",
    "pd_distribution",
    "per_example_relative_difference",
    "relative_pd",
    "topk_churn",
]
