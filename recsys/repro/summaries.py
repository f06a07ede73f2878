"""TensorBoard PD tags and layout: the code lives in :mod:`serving.summaries` (serving needs it without the
training stack), re-exported here."""

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
