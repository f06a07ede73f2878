"""Training: strategy selection, determinism, the trainer and prediction helpers."""

from recsys.train.predict import labels, predict
from recsys.train.strategy import Role, cluster_role, make_strategy
from recsys.train.trainer import check_config, train

__all__ = ["Role", "check_config", "cluster_role", "labels", "make_strategy", "predict", "train"]
