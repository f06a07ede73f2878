"""PD between replicas: the numpy core lives in :mod:`serving.pd` (no TensorFlow), re-exported here."""

from serving.pd import (  # noqa: F401
    DEFAULT_PERCENTILES,
    DEFAULT_THRESHOLD,
    PairStats,
    PDDistribution,
    PDSummary,
    absolute_pd,
    pairwise_pd,
    pd_distribution,
    per_example_relative_difference,
    relative_pd,
)
