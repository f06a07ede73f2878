"""Study figures: the accuracy-PD frontier with CIs, and the distribution of per-example relative PD."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np


def frontier_plot(rows: list[dict[str, Any]], path: str, title: str = "", recommended: str = "",
                  baseline: str = "", xlabel: str = "") -> str:
    """PNG of AUC (y) against relative PD (x) with 95% CIs on both axes; the recommended variant starred.

    ``xlabel``: what the PD on the x axis is (default: between replicas; the update study plots churn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    xs = []
    for i, r in enumerate(rows):
        pd_ci, auc_ci = r.get("relative_pd_ci"), r.get("auc_ci")
        if not pd_ci or not auc_ci or any(v is None or math.isnan(v) for v in (
                pd_ci["estimate"], auc_ci["estimate"])):
            continue
        x, y = pd_ci["estimate"] * 100, auc_ci["estimate"]
        xerr = [[x - pd_ci["ci_lower"] * 100], [pd_ci["ci_upper"] * 100 - x]]
        yerr = [[y - auc_ci["ci_lower"]], [auc_ci["ci_upper"] - y]]
        cost = (r.get("cost") or {}).get("cost")  # recsys/study/cost.py: the marker's area grows with it
        cost = cost if cost and math.isfinite(cost) else None
        label = r["variant"] + ("  (baseline)" if r["variant"] == baseline else "") + (
            f"  cost {cost:.2f}×" if cost else "") + (
            "  ★ recommended" if r["variant"] == recommended else "")
        color = f"C{i % 10}"
        size = 7 * min(max(math.sqrt(cost), 0.6), 3) if cost else 7
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", capsize=4, markersize=size, color=color, label=label)
        if r["variant"] == recommended:
            ax.plot(x, y, marker="*", markersize=22, markerfacecolor="none", markeredgecolor="black",
                    markeredgewidth=1.5, linestyle="none")
        ax.annotate(r["variant"], (x, y), textcoords="offset points", xytext=(7, 7), fontsize=8)
        xs += [max(pd_ci["ci_lower"] * 100, 1e-12), pd_ci["ci_upper"] * 100]
    if xs and min(xs) > 0 and max(xs) / min(xs) > 30:  # PDs over orders of magnitude (noise studies)
        ax.set_xscale("log")
    ax.set_xlabel(xlabel or "relative prediction difference between replicas (%)  ← more reproducible")
    ax.set_ylabel("eval AUC  (higher is better)")
    ax.set_title(title or "accuracy–reproducibility frontier")
    ax.text(0.01, 0.01, "error bars: 95% bootstrap CIs (examples and replicas or chains resampled)"
            + ("; marker area ∝ cost vs the baseline" if any(r.get("cost") for r in rows) else ""),
            transform=ax.transAxes, fontsize=7, color="0.35")
    ax.grid(True, alpha=0.3)
    if xs:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def pooled_relative_differences(preds: np.ndarray) -> np.ndarray:
    """Per-example relative differences of every replica pair of one variant, pooled (pairs x N values)."""
    from recsys.repro.stats import pair_differences

    return pair_differences(np.asarray(preds, dtype=np.float64))[0].reshape(-1)


def tail_percentiles(values: np.ndarray) -> dict[str, float]:
    """p50, p90 and p99 of pooled per-example relative differences."""
    q = np.percentile(values, [50, 90, 99])
    return {"p50": float(q[0]), "p90": float(q[1]), "p99": float(q[2])}


def distribution_plot(distributions: dict[str, np.ndarray], path: str, title: str = "") -> str:
    """PNG: per variant, the share of examples x pairs whose relative difference exceeds x (log-log, so
    the tail is legible), p90 and p99 marked on each curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    positive = np.concatenate([d[d > 0] for d in distributions.values()] or [np.ones(1)])
    floor = float(positive.min()) if positive.size else 1e-12  # exact zeros drawn at the smallest value
    smallest = 1.0
    for i, (variant, values) in enumerate(distributions.items()):
        v = np.sort(np.maximum(values, floor)) * 100
        above = 1.0 - np.arange(v.size) / v.size  # share of values >= v[i]
        smallest = min(smallest, 1.0 / v.size)
        tail = tail_percentiles(values)
        color = f"C{i % 10}"
        ax.step(v, above, where="post", color=color, linewidth=1.4,
                label=f"{variant}: p50 {tail['p50'] * 100:.3g}%, p90 {tail['p90'] * 100:.3g}%, "
                      f"p99 {tail['p99'] * 100:.3g}%")
        for share, key, marker in ((0.10, "p90", "o"), (0.01, "p99", "^")):
            ax.plot(max(tail[key], floor) * 100, share, marker=marker, color=color, markersize=8,
                    markeredgecolor="black", linestyle="none")
    for share, text in ((0.10, "p90"), (0.01, "p99")):
        ax.axhline(share, color="0.55", linewidth=0.8, linestyle=":")
        ax.annotate(text, (0.005, share), xycoords=("axes fraction", "data"), textcoords="offset points",
                    xytext=(0, 3), fontsize=8, color="0.35")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(smallest / 2, 1.05)
    ax.set_xlabel("per-example relative difference |p1 − p2| / mean, all replica pairs pooled (%)")
    ax.set_ylabel("share of examples × pairs with a larger difference")
    ax.set_title((title + ": " if title else "") + "tail of per-example relative PD (● p90, ▲ p99)")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
