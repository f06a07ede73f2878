"""PD by source (``recsys study --by_source``): one study per nondeterminism source, each varying only
that source, for every variant at the same budget; a source × variant table with 95% CIs, a heat map
and the dominant source of the baseline.

Replica 0 of a variant has the base seeds in the seed, order and topology studies (topology's on
``--topology_workers[0]`` workers, 1 by default, as the others on ``--workers``): there it is one run,
trained once and reused (``run_study(shared=...)``, keyed by variant, seeds, noise and workers);
results.json says how many. The noise study perturbs every replica, replica 0 included: nothing shared.
With ``--export_dir`` the first source's study exports, so its cost table has the serving latency.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from typing import Any

from recsys.config import loading
from recsys.config.schema import Experiment
from recsys.study import report
from recsys.study.variants import SOURCES

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
HEATMAP_PNG = "pd_by_source.png"
DECOMPOSED = tuple(s for s in SOURCES if s != "update")  # update is its own study (chains of versions)


def check_sources(sources: tuple[str, ...]) -> None:
    """A decomposition needs at least one source and cannot take the update source (chains)."""
    if not sources:
        raise ValueError("--by_source needs --sources (e.g. seed,order,noise,topology), not none")
    if "update" in sources:
        raise ValueError("--by_source decomposes seed, order, noise and topology; the update source is its "
                         "own study (churn between versions)")


def cell(payload: dict[str, Any], variant: str) -> dict[str, Any]:
    """One variant's entry of the source × variant table, from that source's study results."""
    row = next(v for v in payload["variants"] if v["variant"] == variant)
    ci = row["relative_pd_ci"]
    return {"relative_pd": ci["estimate"], "ci_lower": ci["ci_lower"], "ci_upper": ci["ci_upper"],
            "pd_ratio": row.get("pd_ratio"), "auc": row["auc_ci"]["estimate"]}


def finding(table: dict[str, dict[str, dict[str, Any]]], baseline: str) -> str:
    """One line: the baseline's dominant source, and each variant's PD ratio vs the baseline per source."""
    sources = list(table)
    dominant = max(sources, key=lambda s: table[s][baseline]["relative_pd"])
    pd = table[dominant][baseline]["relative_pd"] * 100
    parts = []
    for v in table[sources[0]]:
        if v == baseline:
            continue
        ratios = [f"{s} {table[s][v]['pd_ratio']['estimate']:.2g}×" for s in sources
                  if table[s][v].get("pd_ratio")]
        parts.append(f"`{v}`: " + (", ".join(ratios) or "no ratio (baseline PD 0)"))
    return (f"`{dominant}` dominates `{baseline}`'s disagreement ({pd:.3g}% relative PD); PD vs `{baseline}` "
            f"per source: " + "; ".join(parts))


def markdown(payload: dict[str, Any]) -> str:
    """results.md of a decomposition: the source × variant table with CIs, the finding, what was shared."""
    table, variants = payload["table"], payload["variants"]
    lines = [f"### {payload.get('title') or 'PD by source'}", "", f"**Finding:** {payload['finding']}", "",
             "| source | " + " | ".join(f"`{v}` relative PD (%) [95% CI]" for v in variants) + " |",
             "|---|" + "---:|" * len(variants)]
    for s, row in table.items():
        lines.append(f"| `{s}` | " + " | ".join(
            f"{report._pct(c['relative_pd'])} [{report._pct(c['ci_lower'])}, {report._pct(c['ci_upper'])}]"
            for c in (row[v] for v in variants)) + " |")
    lines += ["", f"Each row is a study of K={payload['replicas']} replicas per variant that differ only in "
              "that source, at the same budget; its full report is in `<source>/results.md`.",
              f"Shared: {payload['shared']}", "", f"![PD by source]({HEATMAP_PNG})"]
    return "\n".join(lines) + "\n"


def heatmap(payload: dict[str, Any], path: str) -> str:
    """PNG: sources (rows) × variants (columns), colour = log10 relative PD, cells labelled in %."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sources, variants = list(payload["table"]), payload["variants"]
    pct = np.array([[payload["table"][s][v]["relative_pd"] * 100 for v in variants] for s in sources])
    shown = np.log10(np.where(pct > 0, pct, np.nan))
    fig, ax = plt.subplots(figsize=(1.6 * len(variants) + 2.5, 0.7 * len(sources) + 1.8), dpi=110)
    im = ax.imshow(shown, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(variants)), variants, rotation=30, ha="right")
    ax.set_yticks(range(len(sources)), sources)
    for i in range(len(sources)):
        for j in range(len(variants)):
            ax.text(j, i, f"{pct[i, j]:.2g}%", ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(im, ax=ax, label="log10 relative PD (%)")
    ax.set_title(payload.get("title") or "relative PD by source")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run_by_source(base: Experiment, options: Any, output: str, overwrite: bool = False,
                  sections: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One study per source in ``options.sources`` under ``<output>/<source>``, then the decomposition:
    ``<output>/results.json``, ``results.md`` and ``pd_by_source.png``."""
    from recsys.study import runner

    check_sources(options.sources)
    results_path = os.path.join(output, RESULTS_JSON)
    if os.path.exists(results_path) and not overwrite:
        raise FileExistsError(f"{results_path} exists; choose another --output or pass --overwrite")
    os.makedirs(output, exist_ok=True)
    loading.save(base, output, sections)
    start = time.perf_counter()
    shared: dict[tuple, dict[str, Any]] = {}
    studies = {}
    for i, source in enumerate(options.sources):
        # --export_dir: the first source's study exports (a variant's serving latency does not depend on
        # the source); studies reusing its replica 0 measure that export too, the noise study does not.
        sub = dataclasses.replace(options, sources=(source,), export_dir=options.export_dir if i == 0 else "",
                                  max_cost=0.0,
                                  title=f"{options.title or base.name}: {source} only")
        studies[source] = runner.run_study(base, sub, os.path.join(output, source), overwrite=overwrite,
                                           shared=shared)
    variants = list(options.activations)
    baseline = studies[options.sources[0]]["baseline"]
    table = {s: {v: cell(p, v) for v in variants} for s, p in studies.items()}
    trained = len(shared)
    total = len(options.sources) * len(variants) * options.replicas
    payload: dict[str, Any] = {
        "kind": "by_source", "title": options.title or f"{base.name}: PD by source",
        "baseline": baseline, "variants": variants, "sources": list(options.sources),
        "replicas": options.replicas, "table": table, "finding": finding(table, baseline),
        "studies": {s: os.path.join(s, RESULTS_JSON) for s in studies},
        "trained_replicas": trained, "replica_slots": total,
        "shared": (f"{total - trained} of {total} replica slots reused a run another source's study had "
                   "trained (same variant, seeds, noise and worker count: replica 0 of the seed, order and "
                   "topology studies; noise perturbs every replica); everything else trained once per "
                   "source"),
        "elapsed_seconds": time.perf_counter() - start, "figures": {"heatmap": HEATMAP_PNG},
    }
    write(payload, output)
    return payload


def write(payload: dict[str, Any], output: str) -> None:
    """A decomposition's results.json, results.md and heat map in ``output``."""
    report.write_json(os.path.join(output, RESULTS_JSON), payload)
    with open(os.path.join(output, RESULTS_MD), "w", encoding="utf-8") as fh:
        fh.write(markdown(payload))
    heatmap(payload, os.path.join(output, HEATMAP_PNG))
