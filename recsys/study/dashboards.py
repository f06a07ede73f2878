"""TensorBoard data of a study: one run per variant on shared PD/AUC tags, CI margin charts, HParams.

Layout under ``<output>/tensorboard`` (the logdir to open)::

    pd/                         custom-scalars layout
    pd/<variant>                one run per variant: tags pd/relative, auc/mean, ... and their CI bounds
    replicas/                   HParams experiment (hyperparameters and metrics of the table)
    replicas/<variant>/replica-<i>   one HParams session per replica (trial "<variant>/replica-<i>")

The Custom Scalars and Scalars pages plot only selected runs, and TensorBoard's run selector (2.21:
``tf-multi-checkbox``, ``maxNamesToEnableByDefault = 40``) selects every run on first load only when at
most 40 runs match; beyond that it selects none and every chart is empty. The study's logdir holds
2 + V + V*K runs (27 for 5 variants x 4 replicas); ``tensorboard --logdir <output>/tensorboard/pd``
has V + 1 runs and fills the PD charts at any size (see :func:`tensorboard_commands`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from recsys.compat import tf
from recsys.repro.stats import Interval, VariantStats
from recsys.repro.summaries import group_tag

TB_DIR = "tensorboard"
PD_DIR = "pd"
REPLICAS_DIR = "replicas"
MAX_RUNS_SELECTED_BY_DEFAULT = 40  # TensorBoard 2.21 tf-multi-checkbox maxNamesToEnableByDefault
CATEGORY = "Prediction difference beside AUC (one line per variant, 95% CIs)"
REPLICA_METRICS = {  # HParams metric tag -> display name
    "replica/relative_pd": "relative PD vs its variant's other replicas",
    "replica/auc": "eval AUC",
    "replica/logloss": "eval logloss",
    "variant/relative_pd": "variant relative PD (mean over pairs)",
    "variant/auc": "variant AUC (mean over replicas)",
}


def variant_run(variant: str) -> str:
    """The run (relative to the study's TensorBoard logdir) that holds one variant's PD and AUC."""
    return f"{PD_DIR}/{group_tag(variant)}"


def replica_run(variant: str, index: int) -> str:
    """The HParams session run of replica ``index`` of a variant."""
    return f"{REPLICAS_DIR}/{group_tag(variant)}/replica-{index}"


def run_count(variants: int, replicas: int) -> int:
    """Runs in the study's TensorBoard logdir: layout, variants, HParams experiment, replica sessions."""
    return 2 + variants + variants * replicas


def tensorboard_commands(output: str, variants: int, replicas: int) -> list[str]:
    """The command(s) that open the dashboards with every PD chart filled on first load."""
    logdir = os.path.join(output, TB_DIR)
    if run_count(variants, replicas) <= MAX_RUNS_SELECTED_BY_DEFAULT:
        return [f"tensorboard --logdir {logdir} --host 127.0.0.1"]
    return [f"tensorboard --logdir {os.path.join(logdir, PD_DIR)} --host 127.0.0.1   # PD and AUC charts",
            f"tensorboard --logdir {logdir} --host 127.0.0.1 --port 6007   # HParams: one row per replica"]


def open_url(tab: str = "custom_scalars", port: int = 6006) -> str:
    """The page to open: ``tab`` with smoothing 0. TensorBoard 2.21's Scalars and Custom Scalars read their
    smoothing from the URL hash (``_smoothingWeight``, tf_storage; default 0.6, which bends a line of two
    or three evaluations away from its points). "Ignore outliers in chart scaling" lives in the browser's
    localStorage only: no URL can turn it off."""
    return f"http://127.0.0.1:{port}/#{tab}&_smoothingWeight=0"


OPEN_HINT = "smoothing 0; untick \"Ignore outliers in chart scaling\" if a line leaves the chart"


def _margin(title: str, tag: str) -> Any:
    from tensorboard.plugins.custom_scalar import layout_pb2

    return layout_pb2.Chart(title=title, margin=layout_pb2.MarginChartContent(series=[
        layout_pb2.MarginChartContent.Series(value=tag, lower=f"{tag}_ci_lower", upper=f"{tag}_ci_upper")]))


def _lines(title: str, tag: str) -> Any:
    from tensorboard.plugins.custom_scalar import layout_pb2

    return layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=[rf"^{tag}$"]))


def layout(baseline: str) -> Any:
    """Custom-scalars layout: charts over run-independent tags, so every variant is a coloured line."""
    from tensorboard.plugins.custom_scalar import layout_pb2

    charts = [
        _lines("relative PD (mean over replica pairs)", "pd/relative"),
        _lines("AUC (mean over replicas)", "auc/mean"),
        _margin("relative PD with 95% CI", "pd/relative"),
        _margin("AUC with 95% CI", "auc/mean"),
        _margin(f"PD ratio vs {baseline} with 95% CI (below 1: fewer disagreements)", "pd_ratio/vs_baseline"),
        _margin(f"AUC delta vs {baseline} with 95% CI", "auc_delta/vs_baseline"),
        _lines("absolute PD (mean over replica pairs)", "pd/absolute"),
        _lines("relative PD: lowest and highest replica pair", "pd/relative_pair_(min|max)"),
    ]
    return layout_pb2.Layout(category=[layout_pb2.Category(title=CATEGORY, chart=charts)])


def write_layout(tb_root: str, baseline: str) -> None:
    """Write the custom-scalars layout into ``<tb_root>/pd`` (TensorBoard reads it from any run)."""
    from tensorboard import summary as tb_summary

    writer = tf.summary.create_file_writer(os.path.join(tb_root, PD_DIR))
    with writer.as_default():
        tf.summary.experimental.write_raw_pb(
            tb_summary.v1.custom_scalar_pb(layout(baseline)).SerializeToString(), step=0)
    writer.close()


def _with_ci(tag: str, interval: Interval | None) -> dict[str, float]:
    if interval is None:
        return {}
    return {tag: interval.estimate, f"{tag}_ci_lower": interval.lower, f"{tag}_ci_upper": interval.upper}


def step_scalars(stats: VariantStats, pair_min: float, pair_max: float) -> dict[str, float]:
    """The scalars of one variant at one evaluation step, by tag (the same tags for every variant)."""
    return {**_with_ci("pd/relative", stats.relative_pd), **_with_ci("pd/absolute", stats.absolute_pd),
            **_with_ci("auc/mean", stats.auc), **_with_ci("pd_ratio/vs_baseline", stats.pd_ratio),
            **_with_ci("auc_delta/vs_baseline", stats.auc_delta),
            "pd/relative_pair_min": pair_min, "pd/relative_pair_max": pair_max}


def write_variant_series(tb_root: str, variant: str, series: Mapping[int, Mapping[str, float]]) -> None:
    """One variant's run: ``{step: {tag: value}}`` written as scalars."""
    write_series(tb_root, variant_run(variant), series)


def write_series(tb_root: str, run: str, series: Mapping[int, Mapping[str, float]]) -> None:
    """``{step: {tag: value}}`` written as scalars to the run ``run`` (a path under ``tb_root``)."""
    writer = tf.summary.create_file_writer(os.path.join(tb_root, run))
    with writer.as_default():
        for step in sorted(series):
            for tag, value in series[step].items():
                tf.summary.scalar(tag, value, step=int(step))
    writer.close()


@dataclasses.dataclass(frozen=True)
class ReplicaSession:
    """One HParams row: a replica's hyperparameters and its metrics at the end of training."""

    variant: str
    index: int
    hparams: dict[str, Any]
    metrics: dict[str, float]  # tags of REPLICA_METRICS
    step: int


def replica_hparams(variant: str, plan: Mapping[str, Any], sources: tuple[str, ...]) -> dict[str, Any]:
    """Variant, activation and its parameters, ensemble size, seeds and sources of one replica, as
    HParams values."""
    from recsys.activations.registry import parse
    from recsys.study.variants import split_variant

    activation, ensemble = split_variant(variant)
    name, params = parse(activation)
    out: dict[str, Any] = {
        "variant": variant, "activation": name, "ensemble": ensemble,
        "activation_params": ", ".join(f"{k}={v}" for k, v in params.items()),
        "replica": int(plan["index"]), "seed": int(plan["seed"]), "data_seed": int(plan["data_seed"]),
        "noise_scale": float(plan["noise_scale"]), "sources": ",".join(sources) or "none"}
    for key, value in params.items():
        out[f"param.{key}"] = value if isinstance(value, bool | str) else float(value)
    return out


def _domain(values: set) -> Any:
    """A discrete domain of one hparam's values (typed column), or none when the types are mixed."""
    from tensorboard.plugins.hparams import api as hp

    kinds = {type(v) for v in values}
    return hp.Discrete(sorted(values)) if len(kinds) == 1 else None


def write_hparams(tb_root: str, sessions: list[ReplicaSession]) -> None:
    """The HParams experiment and one session per replica, trial names unique across variants."""
    from tensorboard.plugins.hparams import api as hp

    values: dict[str, set] = {}
    for s in sessions:
        for name, value in s.hparams.items():
            values.setdefault(name, set()).add(value)
    root = os.path.join(tb_root, REPLICAS_DIR)
    writer = tf.summary.create_file_writer(root)
    with writer.as_default():  # discrete domains give the HParams table typed, filterable columns
        hp.hparams_config(hparams=[hp.HParam(n, _domain(v)) for n, v in values.items()],
                          metrics=[hp.Metric(t, display_name=name) for t, name in REPLICA_METRICS.items()])
    writer.close()
    for s in sessions:
        writer = tf.summary.create_file_writer(os.path.join(tb_root, replica_run(s.variant, s.index)))
        with writer.as_default():
            hp.hparams(s.hparams, trial_id=f"{s.variant}/replica-{s.index}")
            for tag, value in s.metrics.items():
                tf.summary.scalar(tag, value, step=s.step)
        writer.close()
