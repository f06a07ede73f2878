"""``recsys train --config FILE|NAME [--set key=value ...] --model_dir DIR``: train, evaluate, export.

Runs as one process, or as one worker of a MultiWorkerMirroredStrategy cluster when TF_CONFIG is set
(start the same command on every worker). Prints the eval metrics and the export path as JSON.
"""

from __future__ import annotations

import json

from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "YAML config file, or the name of one in configs/ (e.g. synthetic_small)")
flags.DEFINE_multi_string(
    "set",
    [],
    "override a config value: --set model.activation=smelu "
    "--set train.steps=200 (dotted keys, YAML-typed values)",
)
flags.DEFINE_string(
    "model_dir",
    None,
    "directory for checkpoints, logs, the resolved config and (unless export.base_dir is set) the export",
)
flags.DEFINE_bool("print_config", False, "print the resolved config and exit")
flags.mark_flag_as_required("model_dir")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise SystemExit(f"recsys train: unexpected arguments {argv[1:]}")
    from recsys import config as cfg

    try:
        experiment = cfg.load(FLAGS.config, FLAGS.set)
    except (cfg.ConfigError, FileNotFoundError) as err:
        raise SystemExit(f"recsys train: {err}") from None
    if FLAGS.print_config:
        import yaml

        print(yaml.safe_dump(cfg.to_dict(experiment), sort_keys=False))
        return
    from recsys.train.trainer import train

    try:
        result = train(experiment, FLAGS.model_dir)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"recsys train: {err}") from None
    print(
        json.dumps(
            {
                "eval": result["eval"],
                "export_path": result["export_path"],
                "is_chief": result["role"].is_chief,
                "train_seconds": round(result["train_seconds"], 2),
            },
            indent=2,
        )
    )
