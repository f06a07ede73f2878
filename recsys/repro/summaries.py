"""TensorBoard PD tags and layout: the code lives in :mod:`serving.summaries` (serving needs it without the
training stack), re-exported here."""

import recsys.compat  # noqa: F401  (Keras 2 before serving.summaries imports TensorFlow)
from serving.summaries import (
    CATEGORY,
    group_tag,
    layout,
    pd_scalars,
    write_layout,
    write_pd,
)

__all__ = [
    "CATEGORY",
    "group_tag",
    "layout",
    "pd_scalars",
    "write_layout",
    "write_pd",
]
