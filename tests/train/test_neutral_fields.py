"""Neutral config fields are declared on the schema's fields and left out of the config digest."""

from __future__ import annotations

import dataclasses

from recsys.config import loading
from recsys.config.schema import Experiment, TrainConfig, neutral, neutral_fields
from recsys.train import fingerprint

# The hand-kept list the schema's declarations replaced (recsys/train/fingerprint.py until 2026-12).
OLD_NEUTRAL_FIELDS = {"name", "data.spec_dir", "data.format", "train.verbose", "train.tensorboard",
                      "train.checkpoint", "train.backup_every_steps", "train.record_visits",
                      "train.record_eval_predictions", "export"}


def test_the_derived_list_equals_the_old_hand_kept_one():
    assert set(neutral_fields()) == OLD_NEUTRAL_FIELDS
    assert set(fingerprint.NEUTRAL_FIELDS) == OLD_NEUTRAL_FIELDS


def test_neutral_fields_leave_the_digest_alone_and_others_change_it():
    base = loading.to_dict(Experiment())
    digest = fingerprint.config_digest(base)
    train = TrainConfig(verbose=0, backup_every_steps=7, tensorboard=False)
    changed = loading.to_dict(Experiment(name="other", train=train))
    assert fingerprint.config_digest(changed) == digest
    relevant = loading.to_dict(Experiment(train=TrainConfig(learning_rate=0.5)))
    assert fingerprint.config_digest(relevant) != digest


@dataclasses.dataclass(frozen=True)
class TrainWithLogging(TrainConfig):
    """A future logging field, declared neutral where it is defined."""

    log_learning_rate: bool = neutral(False)


@dataclasses.dataclass(frozen=True)
class ExperimentWithLogging(Experiment):
    train: TrainWithLogging = dataclasses.field(default_factory=TrainWithLogging)


def test_a_new_neutral_field_is_picked_up_and_does_not_change_the_digest():
    names = neutral_fields(ExperimentWithLogging)
    assert set(names) == OLD_NEUTRAL_FIELDS | {"train.log_learning_rate"}
    on = dataclasses.asdict(ExperimentWithLogging(train=TrainWithLogging(log_learning_rate=True)))
    off = dataclasses.asdict(ExperimentWithLogging())
    assert fingerprint.config_digest(on, names) == fingerprint.config_digest(off, names)
    assert fingerprint.config_digest(on) != fingerprint.config_digest(off)  # undeclared, it would count
