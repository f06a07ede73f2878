"""``recsys train --config FILE|NAME [--set key=value ...] --model_dir DIR``: train, evaluate, export.

Runs as one process, or as one worker of a MultiWorkerMirroredStrategy cluster when TF_CONFIG is set
(start the same command on every worker). Prints the eval metrics and the export path as JSON.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
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



class _Interrupt:
    """Ctrl-C or SIGTERM: the first asks the loop to stop at the next chunk, state saved; a second one
    stops at once (the last backup is where a rerun resumes). A worker of a multi-worker cluster
    stops at once on the first: its peers would wait for it in their collectives."""

    def __init__(self) -> None:
        self.signum = 0
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
        self.graceful = len(cluster.get("worker", [])) <= 1
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum or not self.graceful:  # the second signal, or a cluster's worker: now
            why = "again" if self.signum else "(a worker of a cluster)"
            print(f"recsys train: {signal.Signals(signum).name} {why}: stopping now; the last backup is "
                  "where the same command resumes", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.signum = signum
        print(f"recsys train: {signal.Signals(signum).name} received: saving a backup at the next step "
              "boundary (again to stop now)", file=sys.stderr, flush=True)

    def requested(self) -> bool:
        return self.signum != 0


def _resume_hint() -> str:
    return "run the same command to resume: " + " ".join(shlex.quote(a) for a in ["recsys", *sys.argv[1:]])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise SystemExit(f"recsys train: unexpected arguments {argv[1:]}")
    from recsys import config as cfg

    try:
        experiment = cfg.load(FLAGS.config, FLAGS.set)
    except (cfg.ConfigError, FileNotFoundError) as err:
        raise SystemExit(f"recsys train: {err}") from None
    if FLAGS.print_config:  # needs no model_dir: nothing is written
        import yaml

        print(yaml.safe_dump(cfg.to_dict(experiment), sort_keys=False))
        return
    if not FLAGS.model_dir:
        print("recsys train: --model_dir is required (where the run's backups, logs and export go)",
              file=sys.stderr)
        sys.exit(2)
    from recsys.train.parent import ParentError
    from recsys.train.run_state import ResumeRefused
    from recsys.train.trainer import EXIT_REFUSED, train

    interrupt = _Interrupt()
    try:
        result = train(experiment, FLAGS.model_dir, overwrite=FLAGS.overwrite,
                       allow_resume_change=tuple(FLAGS.allow_resume_change),
                       stop_requested=interrupt.requested)
    except (ResumeRefused, ParentError) as err:  # RunLocked included; a restart would fail alike
        print(f"recsys train: {err}", file=sys.stderr, flush=True)
        sys.exit(EXIT_REFUSED)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"recsys train: {err}") from None
    except KeyboardInterrupt:  # before the loop (set-up), or a worker of a cluster: no state saved here
        print(f"recsys train: interrupted; {_resume_hint()} (it resumes from the last backup, if any)",
              file=sys.stderr, flush=True)
        sys.exit(130)
    if interrupt.signum and not result.finished:
        print(f"recsys train: stopped at step {result.stopped_at} of {experiment.train.steps} "
              f"({signal.Signals(interrupt.signum).name}), backup saved; {_resume_hint()}",
              file=sys.stderr, flush=True)
        sys.exit(128 + interrupt.signum)
    print(
        json.dumps(
            {
                "eval": result.eval,
                "export_path": result.export_path,
                "is_chief": result.role.is_chief,
                "train_seconds": round(result.train_seconds, 2),
                "weights_sha256": result.weights_sha256,
                "already_finished": result.already_finished,
                **({"early_stopping": result.early_stopping} if result.early_stopping else {}),
            },
            indent=2,
        )
    )
