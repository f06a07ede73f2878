"""Named experiments, registered in code so they work from an installed wheel (no source tree).

``configs/<name>.yaml`` holds the same values, with comments, for people; a test keeps the two equal.
Register your own with :func:`register`; :func:`recsys.config.load` finds it by name.
"""

from __future__ import annotations

from typing import Any

EXPERIMENTS: dict[str, dict[str, Any]] = {}


def register(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Make ``config`` (a nested dict in the YAML layout) loadable as the named experiment ``name``."""
    if name in EXPERIMENTS:
        raise ValueError(f"experiment {name!r} is already registered")
    EXPERIMENTS[name] = {"name": name, **config}
    return EXPERIMENTS[name]


register(
    "criteo_dcn",
    {
        "data": {
            "spec_dir": "out/data/criteo",
            "batch_size": 4096,
            "eval_batch_size": 16384,
            "shuffle_buffer": 65536,
        },
        "model": {
            "embedding_dim": 16,
            "bottom_mlp": [256, 64, 16],
            "top_mlp": [512, 256],
            "interaction": "cross",
            "cross_layers": 3,
            "cross_low_rank": 64,
            "activation": "relu",
        },
        "train": {
            "steps": 20000,
            "eval_every": 5000,
            "optimizer": "adam",
            "embedding_optimizer": "lazy_adam",
            "learning_rate": 0.001,
            "steps_per_execution": 50,
        },
        "determinism": {"seed": 1, "data_seed": 1, "collective": "AUTO"},
        "export": {"model_name": "criteo_dcn"},
    },
)

register(
    "criteo_study",
    {
        "data": {
            "spec_dir": "out/data/criteo",
            "batch_size": 256,
            "eval_batch_size": 4096,
            "shuffle_buffer": 10000,
        },
        "model": {
            "embedding_dim": 8,
            "bottom_mlp": [64, 8],
            "top_mlp": [128, 64],
            "interaction": "cross",
            "cross_layers": 2,
            "activation": "relu",
            "l2": 0.0,
        },
        "train": {
            "steps": 60,
            "eval_every": 10,
            "optimizer": "adam",
            "learning_rate": 0.001,
            "steps_per_execution": 10,
            "checkpoint": False,
            "verbose": 0,
        },
        "determinism": {"seed": 0, "data_seed": 0},
        "export": {"model_name": "criteo"},
    },
)

register(
    "movielens_dcn",
    {
        "data": {
            "spec_dir": "out/data/movielens",
            "batch_size": 2048,
            "eval_batch_size": 8192,
            "shuffle_buffer": 65536,
        },
        "model": {
            "embedding_dim": 32,
            "bottom_mlp": [64, 32],
            "top_mlp": [256, 128],
            "interaction": "cross",
            "cross_layers": 2,
            "cross_low_rank": 0,
            "activation": "relu",
        },
        "train": {
            "steps": 5000,
            "eval_every": 1000,
            "optimizer": "adam",
            "learning_rate": 0.001,
            "steps_per_execution": 20,
        },
        "determinism": {"seed": 1, "data_seed": 1, "collective": "AUTO"},
        "export": {"model_name": "movielens_dcn"},
    },
)

register(
    "movielens_study",
    {
        "data": {
            "spec_dir": "out/data/movielens",
            "batch_size": 1024,
            "eval_batch_size": 8192,
            "shuffle_buffer": 100000,
        },
        "model": {
            "embedding_dim": 16,
            "bottom_mlp": [32, 16],
            "top_mlp": [128, 64],
            "interaction": "cross",
            "cross_layers": 2,
            "activation": "relu",
        },
        "train": {
            "steps": 400,
            "eval_every": 100,
            "optimizer": "adam",
            "learning_rate": 0.001,
            "steps_per_execution": 20,
            "checkpoint": False,
            "verbose": 0,
        },
        "determinism": {"seed": 0, "data_seed": 0},
        "export": {"model_name": "movielens"},
    },
)

register(
    "synthetic_criteo",
    {
        "data": {
            "spec_dir": "out/data/synthetic",
            "batch_size": 4096,
            "eval_batch_size": 16384,
            "shuffle_buffer": 65536,
        },
        "model": {
            "embedding_dim": 8,
            "bottom_mlp": [64, 8],
            "top_mlp": [64, 32],
            "interaction": "cross",
            "cross_layers": 2,
            "cross_low_rank": 16,
            "activation": "relu",
        },
        "train": {
            "steps": 2000,
            "eval_every": 500,
            "optimizer": "adam",
            "embedding_optimizer": "lazy_adam",
            "learning_rate": 0.001,
            "steps_per_execution": 20,
        },
        "determinism": {"seed": 1, "data_seed": 1, "collective": "AUTO"},
        "export": {"model_name": "synthetic_criteo"},
    },
)

register(
    "synthetic_small",
    {
        "data": {
            "spec_dir": "out/data/synthetic",
            "batch_size": 512,
            "eval_batch_size": 4096,
            "shuffle_buffer": 8192,
        },
        "model": {
            "embedding_dim": 8,
            "bottom_mlp": [32, 8],
            "top_mlp": [64, 32],
            "interaction": "cross",
            "cross_layers": 2,
            "cross_low_rank": 0,
            "activation": "relu",
        },
        "train": {
            "steps": 180,
            "eval_every": 90,
            "optimizer": "adam",
            "learning_rate": 0.001,
            "steps_per_execution": 10,
        },
        "determinism": {"seed": 1, "data_seed": 1, "op_determinism": False, "collective": "AUTO"},
        "export": {"model_name": "ranker"},
    },
)
