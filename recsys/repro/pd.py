"""PD between replicas: the code lives in :mod:`serving.pd` (serving needs it without the
training stack), re-exported here."""

from serving.pd import (
    DEFAULT_PERCENTILES,
    DEFAULT_THRESHOLD,
    PairStats,
    PDDistribution,
    PDSummary,
    Replicas,
    absolute_pd,
    pairwise_pd,
    pd_distribution,
    per_example_relative_difference,
    relative_pd,
)

__all__ = [
    "DEFAULT_PERCENTILES",
    "DEFAULT_THRESHOLD",
    "PDDistribution",
    "PDSummary",
    "PairStats",
    "Replicas",
    "absolute_pd",
    "pairwise_pd",
    "pd_distribution",
    "per_example_relative_difference",
    "relative_pd",
]
