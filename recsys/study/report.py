"""Study outputs a person reads: results.json, a Markdown table, and the accuracy-PD frontier plot."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np


def mean_std(values: list[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": float("nan"), "std": float("nan")}
    return {"mean": float(v.mean()), "std": float(v.std())}


def variant_row(variant: str, replicas: list[dict[str, Any]], pd_summary) -> dict[str, Any]:
    """One variant's line of results: accuracy mean ± spread over replicas, PD mean ± spread over pairs."""
    row: dict[str, Any] = {"variant": variant, "replicas": len(replicas)}
    for key in ("auc", "logloss", "calibration"):
        row[key] = mean_std([r["metrics"][key] for r in replicas])
    row["train_seconds"] = mean_std([r["train_seconds"] for r in replicas])
    if pd_summary is None:
        row["relative_pd"] = row["absolute_pd"] = {"mean": float("nan"), "std": float("nan")}
        row["pairs"] = 0
    else:
        row["relative_pd"] = {"mean": pd_summary.relative.mean, "std": pd_summary.relative.std,
                              "min": pd_summary.relative.min, "max": pd_summary.relative.max}
        row["absolute_pd"] = {"mean": pd_summary.absolute.mean, "std": pd_summary.absolute.std}
        row["share_above"] = pd_summary.share_above.mean
        row["relative_pd_percentiles"] = {k: v.mean for k, v in pd_summary.percentiles.items()}
        row["pairs"] = len(pd_summary.pairs)
    return row


def _pct(value: float) -> str:
    """A PD as a percentage, readable from 1e-6 % to 100 %."""
    pct = value * 100
    return f"{pct:.2f}%" if pct == 0 or abs(pct) >= 0.01 else f"{pct:.1e}%"


def over_time_table(variants: list[dict[str, Any]]) -> str:
    """Relative PD (%) and mean AUC of every variant at every evaluation step: PD vs training length."""
    steps = sorted({p["step"] for v in variants for p in v.get("pd_over_time", [])})
    if not steps:
        return ""
    lines = ["| variant | " + " | ".join(f"step {s}" for s in steps) + " |",
             "|---|" + "---:|" * len(steps)]
    for v in variants:
        by_step = {p["step"]: p for p in v.get("pd_over_time", [])}
        cells = []
        for s in steps:
            p = by_step.get(s)
            if p is None:
                cells.append("")
                continue
            pd = _pct(p["relative_pd"])
            cells.append(f"{pd} / {p['auc']:.4f}" if "auc" in p else pd)
        lines.append(f"| `{v['variant']}` | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Each cell: relative PD (mean over replica pairs) / AUC (mean over replicas) at that step.")
    return "\n".join(lines) + "\n"


def _fmt(d: dict[str, float], scale: float = 1.0, digits: int = 4, unit: str = "") -> str:
    if d is None or math.isnan(d["mean"]):
        return "n/a"
    mean, std = d["mean"] * scale, d["std"] * scale
    if 0 < abs(mean) < 10 ** -digits:  # tiny but not zero (e.g. PD from 1e-7 weight noise): keep it visible
        return f"{mean:.2e} ± {std:.1e}{unit}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}{unit}"


def markdown_table(rows: list[dict[str, Any]], title: str = "") -> str:
    """Accuracy beside PD, one line per variant (relative PD in percent)."""
    lines = [f"### {title}", ""] if title else []
    lines += [
        "| variant | replicas | AUC | logloss | calibration | relative PD (%) | absolute PD |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['variant']}` | {r['replicas']} | {_fmt(r['auc'])} | {_fmt(r['logloss'])} | "
            f"{_fmt(r['calibration'], digits=3)} | {_fmt(r['relative_pd'], 100, 3)} | "
            f"{_fmt(r['absolute_pd'], digits=5)} |"
        )
    lines.append("")
    lines.append("Accuracy: mean ± standard deviation over replicas. PD: mean ± standard deviation over the "
                 "K(K-1)/2 replica pairs, on the same eval examples.")
    return "\n".join(lines) + "\n"


def results_markdown(payload: dict[str, Any]) -> str:
    """results.md of a study from its results.json payload: the table, then PD and AUC over training."""
    text = markdown_table(payload["variants"], payload.get("title", ""))
    over_time = over_time_table(payload["variants"])
    if over_time:
        text += "\n#### PD and AUC over training\n\n" + over_time
    return text


def frontier_plot(rows: list[dict[str, Any]], path: str, title: str = "", metric: str = "auc") -> str:
    """PNG of accuracy (y) against relative PD (x) with error bars: the accuracy-reproducibility frontier."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=110)
    for r in rows:
        x, xe = r["relative_pd"]["mean"] * 100, r["relative_pd"]["std"] * 100
        y, ye = r[metric]["mean"], r[metric]["std"]
        if math.isnan(x) or math.isnan(y):
            continue
        ax.errorbar(x, y, xerr=xe, yerr=ye, fmt="o", capsize=4, markersize=7, label=r["variant"])
        ax.annotate(r["variant"], (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("relative prediction difference between replicas (%)  ← more reproducible")
    ax.set_ylabel(f"eval {metric.upper() if metric == 'auc' else metric}" +
                  ("  (higher is better)" if metric == "auc" else "  (lower is better)"))
    ax.set_title(title or "accuracy–reproducibility frontier")
    ax.grid(True, alpha=0.3)
    if rows:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _jsonable(obj):
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def write_json(path: str, payload: dict[str, Any]) -> str:
    """Write JSON atomically (NaN as null, so any JSON reader takes it)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(_jsonable(payload), fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
    return path
