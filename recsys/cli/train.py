"""``recsys train --config FILE|NAME [--set key=value ...] --model_dir DIR``: train, evaluate, export.

Runs as one process, or as one worker of a MultiWorkerMirroredStrategy cluster when TF_CONFIG is set
(start the same command on every worker). Prints the eval metrics and the export path as JSON.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sys

from absl import flags

from recsys.cli import exits
from recsys.train.heartbeat import LAUNCH_ATTEMPT_ENV, STOPPING

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
    """Ctrl-C or SIGTERM: the first asks the loop to stop at the next chunk, state saved (in a cluster
    every worker stops at that same step: :mod:`recsys.train.stop`); a second one stops at once (the
    last backup is where a rerun resumes)."""

    def __init__(self) -> None:
        self.signum = 0
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum:  # the second signal: now
            print(f"recsys train: {signal.Signals(signum).name} again: stopping now; the last backup is "
                  "where the same command resumes", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.signum = signum
        print(f"recsys train: {signal.Signals(signum).name} received: {STOPPING} and saving a backup "
              "(again to stop now)", file=sys.stderr, flush=True)

    def requested(self) -> bool:
        return self.signum != 0


def _peer_lost(err: Exception) -> str:
    """One line for a collective that a dead peer aborted (TensorFlow's message is a graph trace)."""
    text = str(getattr(err, "message", err))
    match = re.search(r"aborted by: (.+)", text)
    return f"lost a peer worker ({match.group(1).strip() if match else text.splitlines()[0]}); the job " \
        "resumes from the last backup when restarted"


def _resume_hint() -> str:
    return "run the same command to resume: " + " ".join(shlex.quote(a) for a in ["recsys", *sys.argv[1:]])


def main(argv: list[str]) -> None:
    exits.no_arguments("train", argv)
    from recsys import config as cfg

    try:
        experiment = cfg.load(FLAGS.config, FLAGS.set)
    except (cfg.ConfigError, FileNotFoundError) as err:
        exits.usage("train", err)
    if FLAGS.print_config:  # needs no model_dir: nothing is written
        import yaml

        print(yaml.safe_dump(cfg.to_dict(experiment), sort_keys=False))
        return
    if not FLAGS.model_dir:
        exits.usage("train", "--model_dir is required (where the run's backups, logs and export go)")
    from recsys import quiet
    from recsys.compat import tf
    from recsys.train.parent import ParentError
    from recsys.train.run_state import ResumeRefused
    from recsys.train.strategy import cluster_role
    from recsys.train.trainer import EXIT_REFUSED, train

    interrupt = _Interrupt()
    try:
        result = train(experiment, FLAGS.model_dir, overwrite=FLAGS.overwrite,
                       allow_resume_change=tuple(FLAGS.allow_resume_change),
                       stop_requested=interrupt.requested)
    except (ResumeRefused, ParentError) as err:  # RunLocked included; a restart would fail alike
        exits.fail("train", err, EXIT_REFUSED)
    except (ValueError, FileNotFoundError) as err:
        exits.fail("train", err)
    except tf.errors.UnavailableError as err:  # a peer died: its collectives abort here
        if quiet.is_verbose() or cluster_role().num_workers < 2:
            raise
        exits.fail("train", _peer_lost(err))
    except KeyboardInterrupt:  # before the handlers were installed: no state saved here
        exits.fail("train", f"interrupted; {_resume_hint()} (it resumes from the last backup, if any)",
                   128 + signal.SIGINT)
    # a signal here, or on a peer worker (an early-stopped run is finished, and no interruption)
    if not result.finished and result.stopped_at < experiment.train.steps:
        signum = interrupt.signum or signal.SIGINT
        why = signal.Signals(interrupt.signum).name if interrupt.signum else "a peer worker's stop request"
        # a worker the supervisor started (it prints its own hint, with its own command) says no more
        hint = "" if os.environ.get(LAUNCH_ATTEMPT_ENV) else f"; {_resume_hint()}"
        print(f"recsys train: stopped at step {result.stopped_at} of {experiment.train.steps} "
              f"({why}), backup saved{hint}", file=sys.stderr, flush=True)
        sys.exit(128 + signum)
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
