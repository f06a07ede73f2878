"""``recsys train --config FILE|NAME [--set key=value ...] --model_dir DIR``: train, evaluate, export.

Runs as one process, or as one worker of a MultiWorkerMirroredStrategy cluster when TF_CONFIG is set
(start the same command on every worker). Prints the eval metrics and the export path as JSON.
"""

from __future__ import annotations

import json
import sys

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
flags.DEFINE_bool("overwrite", False, "discard a previous run in --model_dir and start over (without it, a "
                  "finished run is left as it is and an unfinished one resumes exactly)")
flags.DEFINE_list("allow_resume_change", [], "resume although these differ from the run in --model_dir: "
                  "any of config, data, workers (recorded in the fingerprint: no bit-exact guarantee)")
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
    from recsys.train.run_state import ResumeRefused
    from recsys.train.trainer import EXIT_REFUSED, train

    try:
        result = train(experiment, FLAGS.model_dir, overwrite=FLAGS.overwrite,
                       allow_resume_change=tuple(FLAGS.allow_resume_change))
    except ResumeRefused as err:
        print(f"recsys train: {err}", file=sys.stderr, flush=True)
        sys.exit(EXIT_REFUSED)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"recsys train: {err}") from None
    print(
        json.dumps(
            {
                "eval": result.eval,
                "export_path": result.export_path,
                "is_chief": result.role.is_chief,
                "train_seconds": round(result.train_seconds, 2),
                "weights_sha256": result.weights_sha256,
                "already_finished": result.already_finished,
            },
            indent=2,
        )
    )
