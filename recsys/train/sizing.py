"""Warnings for a config far beyond its data: many more epochs than a model can use, or a batch that is
a large share of the train split. Both train without error and give a model that looks fine in
training (train AUC near 1) and poor on eval, so the trainer says so once, before it starts.
"""

from __future__ import annotations

import logging

from pipelines.feature_spec import FeatureSpec
from recsys.config.schema import Experiment

log = logging.getLogger(__name__)

MAX_EPOCHS = 20  # above this many passes over the train split, warn
MAX_BATCH_SHARE = 0.1  # a global batch above this share of the train rows, warn
_warned: set[str] = set()  # once per process (a study trains many replicas of one config)


def warnings(config: Experiment, spec: FeatureSpec) -> list[str]:
    """What is far beyond the data in ``config`` (empty when the spec does not count its rows)."""
    d, steps = config.data, config.train.steps
    rows = int(spec.counts.written_train * (1.0 - d.validation_fraction))
    if rows <= 0:
        return []
    out = []
    epochs = steps * d.batch_size / rows
    if epochs > MAX_EPOCHS:
        fit = max(1, MAX_EPOCHS * rows // d.batch_size)
        out.append(f"train.steps={steps:,} x data.batch_size={d.batch_size:,} is {epochs:,.0f} epochs of "
                   f"the {rows:,} train rows in {d.spec_dir} (more than {MAX_EPOCHS}): the model will "
                   f"overfit (train AUC near 1, eval loss rising); --set train.steps={fit} is "
                   f"{MAX_EPOCHS} epochs, or use more data")
    if d.batch_size > MAX_BATCH_SHARE * rows:
        fit = max(1, 2 ** int(MAX_BATCH_SHARE * rows).bit_length() // 2)
        out.append(f"data.batch_size={d.batch_size:,} is more than {MAX_BATCH_SHARE:.0%} of the {rows:,} "
                   f"train rows in {d.spec_dir}: few steps per epoch, each on much of the data; "
                   f"e.g. --set data.batch_size={fit}")
    return out


def warn(config: Experiment, spec: FeatureSpec) -> None:
    """Log :func:`warnings` (each once per process)."""
    for message in warnings(config, spec):
        if message not in _warned:
            _warned.add(message)
            log.warning("%s", message)
