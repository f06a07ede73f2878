"""TensorBoard tags and dashboard layout for PD, shared by the study and the replica-divergence monitor.

PD between replicas of one group (a study variant, or a set of monitored replicas) goes to one run with
tags ``pd/<group>/relative`` (mean over pairs), ``.../relative_min`` / ``..._max`` (spread over pairs),
``.../absolute``, ``.../share_above`` and ``.../relative_p<q>``. The custom-scalars layout gives each
group a PD chart and a margin chart of the spread across pairs, plus an all-groups comparison chart.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import tensorflow as tf

from serving.pd import PDSummary

if TYPE_CHECKING:
    from tensorboard.plugins.custom_scalar import layout_pb2

CATEGORY = "Prediction difference (replica divergence)"


def group_tag(group: str) -> str:
    """A tag-safe form of a group name ("smelu(beta=0.5)" -> "smelu_beta_0.5")."""
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", group).strip("_") or "group"


def pd_scalars(group: str, summary: PDSummary) -> dict[str, float]:
    """The scalar values written for one group at one step, by tag."""
    g = f"pd/{group_tag(group)}"
    out = {
        f"{g}/relative": summary.relative.mean,
        f"{g}/relative_min": summary.relative.min,
        f"{g}/relative_max": summary.relative.max,
        f"{g}/relative_std": summary.relative.std,
        f"{g}/absolute": summary.absolute.mean,
        f"{g}/share_above": summary.share_above.mean,
    }
    for name, stats in summary.percentiles.items():
        out[f"{g}/relative_{name}"] = stats.mean
    return out


def write_pd(writer: tf.summary.SummaryWriter, group: str, step: int, summary: PDSummary) -> None:
    """Write one group's PD scalars at ``step``."""
    with writer.as_default():
        for tag, value in pd_scalars(group, summary).items():
            tf.summary.scalar(tag, value, step=step)
    writer.flush()


def layout(groups: list[str]) -> layout_pb2.Layout:
    """The custom-scalars layout proto: per group a PD chart and a margin chart; one comparison chart."""
    from tensorboard.plugins.custom_scalar import layout_pb2

    charts = [
        layout_pb2.Chart(
            title="relative PD, all groups (mean over replica pairs)",
            multiline=layout_pb2.MultilineChartContent(tag=[r"^pd/[^/]+/relative$"]),
        )
    ]
    for group in groups:
        g = f"pd/{group_tag(group)}"
        charts.append(layout_pb2.Chart(
            title=f"{group}: PD over time",
            multiline=layout_pb2.MultilineChartContent(
                tag=[rf"^{re.escape(g)}/(relative|absolute|share_above)$"]
            ),
        ))
        charts.append(layout_pb2.Chart(
            title=f"{group}: relative PD spread across replica pairs",
            margin=layout_pb2.MarginChartContent(series=[layout_pb2.MarginChartContent.Series(
                value=f"{g}/relative", lower=f"{g}/relative_min", upper=f"{g}/relative_max",
            )]),
        ))
    return layout_pb2.Layout(category=[layout_pb2.Category(title=CATEGORY, chart=charts)])


def write_layout(logdir: str, groups: list[str]) -> None:
    """Write the custom-scalars layout into ``logdir`` (TensorBoard reads it from any run)."""
    from tensorboard import summary as tb_summary

    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        tf.summary.experimental.write_raw_pb(
            tb_summary.v1.custom_scalar_pb(layout(groups)).SerializeToString(), step=0
        )
    writer.flush()
    writer.close()
