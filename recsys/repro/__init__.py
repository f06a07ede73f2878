"""Reproducibility tooling of the training library: PD by slice, statistics over replicas, weight digests,
accuracy beside PD, and the offline export diff (``recsys compare``).

The metrics themselves have one home each: PD in :mod:`serving.pd`, top-k churn and flip rates in
:mod:`serving.churn`, the gate's thresholds in :mod:`serving.gate` (serving needs them without the
training stack), accuracy in :mod:`recsys.repro.accuracy`.
"""
