"""The warning for a config far beyond its data: epochs over the threshold, a batch over a tenth of
the train rows; none for a config sized for its data, or a spec without counts."""

from __future__ import annotations

import logging

from pipelines.feature_spec import Counts, FeatureSpec, Label
from recsys import config as cfg
from recsys.train import sizing


def spec(train_rows: int) -> FeatureSpec:
    return FeatureSpec(dataset="d", label=Label(), features=(),
                       counts=Counts(read=train_rows + 800, written_train=train_rows, written_eval=800))


def experiment(*sets: str):
    return cfg.load("synthetic_small", ["data.spec_dir=out/data/mine", *sets])


def test_the_readme_case_warns_of_both_with_a_fix():
    """criteo_dcn's 20,000 steps of 4,096 on 7,200 train rows: 11,378 epochs, a batch of 57% of the rows."""
    found = sizing.warnings(experiment("train.steps=20000", "data.batch_size=4096"), spec(7200))
    assert found == [
        "train.steps=20,000 x data.batch_size=4,096 is 11,378 epochs of the 7,200 train rows in "
        "out/data/mine (more than 20): the model will overfit (train AUC near 1, eval loss rising); "
        "--set train.steps=35 is 20 epochs, or use more data",
        "data.batch_size=4,096 is more than 10% of the 7,200 train rows in out/data/mine: few steps per "
        "epoch, each on much of the data; e.g. --set data.batch_size=512",
    ]


def test_a_config_sized_for_its_data_or_a_spec_without_counts_is_quiet():
    assert sizing.warnings(experiment("train.steps=200", "data.batch_size=256"), spec(180_000)) == []
    assert sizing.warnings(experiment("train.steps=999999", "data.batch_size=4096"), spec(0)) == []
    # exactly 20 epochs and exactly a tenth: still quiet
    assert sizing.warnings(experiment("train.steps=200", "data.batch_size=1000"), spec(10_000)) == []


def test_the_validation_split_is_not_trained_on():
    """20 epochs of 10,000 rows, but a fifth is held out for validation: 25 epochs of what trains."""
    found = sizing.warnings(experiment("train.steps=200", "data.batch_size=1000",
                                       "data.validation_fraction=0.2"), spec(10_000))
    assert len(found) == 2 and "is 25 epochs of the 8,000 train rows" in found[0]


def test_each_warning_is_logged_once_per_process(caplog):
    config = experiment("train.steps=5000", "data.batch_size=64")
    with caplog.at_level(logging.WARNING, logger="recsys.train.sizing"):
        sizing.warn(config, spec(3_333))
        sizing.warn(config, spec(3_333))  # the next replica of a study
    assert len(caplog.records) == 1 and "96 epochs" in caplog.messages[0]
