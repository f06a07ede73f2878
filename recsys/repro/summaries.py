"""PD's TensorBoard tags and layout: they live in :mod:`serving.summaries` (TensorFlow, no Keras)."""

from serving.summaries import CATEGORY, group_tag, layout, pd_scalars, write_layout, write_pd  # noqa: F401
