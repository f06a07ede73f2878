"""TensorBoard data of a study: HParams per replica run, PD over time per variant, the PD layout."""

from __future__ import annotations

import os

from recsys.compat import tf
from recsys.repro import pairwise_pd, summaries

PD_RUN = "pd"


def write_hparams_config(logdir: str) -> None:
    """The HParams experiment: which hyperparameters and metrics the replica runs report."""
    from tensorboard.plugins.hparams import api as hp

    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        hp.hparams_config(
            hparams=[hp.HParam("variant"), hp.HParam("activation"), hp.HParam("replica"),
                     hp.HParam("seed"), hp.HParam("data_seed"), hp.HParam("noise_scale")],
            metrics=[hp.Metric("epoch_auc", group="validation", display_name="eval AUC"),
                     hp.Metric("epoch_logloss", group="validation", display_name="eval logloss"),
                     hp.Metric("epoch_loss", group="validation", display_name="eval loss")],
        )
    writer.close()


def write_replica_hparams(run_dir: str, variant: str, activation: str, plan: dict) -> None:
    """Tag a replica's run with its variant and seeds, so the HParams table groups replicas."""
    from tensorboard.plugins.hparams import api as hp

    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        hp.hparams({"variant": variant, "activation": activation, "replica": int(plan["index"]),
                    "seed": int(plan["seed"]), "data_seed": int(plan["data_seed"]),
                    "noise_scale": float(plan["noise_scale"])},
                   trial_id=os.path.relpath(run_dir, os.path.dirname(os.path.dirname(run_dir))))
    writer.close()


def write_pd_over_time(logdir: str, variant: str, records: list[dict[int, object]]) -> list[dict]:
    """PD between the replicas at every evaluation step they share ({step: predictions} per replica);
    returns the per-step values."""
    if len(records) < 2:
        return []
    steps = sorted(set.intersection(*[set(r) for r in records]))
    writer = tf.summary.create_file_writer(os.path.join(logdir, PD_RUN))
    out = []
    for step in steps:
        preds = [r[step] for r in records]
        summary = pairwise_pd(preds)
        summaries.write_pd(writer, variant, step, summary)
        out.append({"step": int(step), "relative_pd": summary.relative.mean,
                    "relative_pd_min": summary.relative.min, "relative_pd_max": summary.relative.max,
                    "absolute_pd": summary.absolute.mean})
    writer.close()
    return out
