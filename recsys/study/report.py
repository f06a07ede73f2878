"""Study outputs a person reads: results.json, a Markdown table, and the accuracy-PD frontier plot."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pipelines import atomic


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


def _ci(d: dict[str, float] | None, pct: bool = False, digits: int = 4, signed: bool = False) -> str:
    """"estimate [lower, upper]" of an interval dict; PDs as percentages."""
    if d is None or d.get("estimate") is None or math.isnan(d["estimate"]):
        return "n/a"
    if pct:
        return f"{_pct(d['estimate'])} [{_pct(d['ci_lower'])}, {_pct(d['ci_upper'])}]"
    fmt = f"{'+' if signed else ''}.{digits}f"
    return f"{d['estimate']:{fmt}} [{d['ci_lower']:{fmt}}, {d['ci_upper']:{fmt}}]"


def detectable_sentence(stats: dict[str, Any], replicas: int, examples: int) -> str:
    """What K replicas can detect here, from the bootstrap spread of the baseline's PD."""
    x, sd = stats.get("detectable_pd_ratio"), stats.get("baseline_log_pd_sd")
    if x is None or sd is None:
        return (f"With K={replicas} replicas the smallest detectable PD ratio is undefined here: the "
                "baseline's PD is 0 in some bootstrap draws.")
    return (f"With K={replicas} replicas and {examples:,} eval examples, the smallest detectable PD ratio "
            f"here is about **{x:.2f}** (a {(1 - x) * 100:.0f}% reduction of the baseline's PD; an increase "
            f"to about {1 / x:.2f}×): exp(−1.96·√2·sd(log PD)) with sd(log PD) = {sd:.3f}, the bootstrap "
            "spread of the baseline's relative PD. Smaller differences are within noise.")


def measured_source(payload: dict[str, Any]) -> str:
    """What made the replicas differ, from the study's options and replica plans, e.g. ``topology (1 vs 2
    workers)`` or ``init seed and data order`` ("" for a payload without options)."""
    options = payload.get("options") or {}
    if "sources" not in options:
        return ""
    if not options["sources"]:
        return "nothing (identical replicas)"
    names = []
    for source in options["sources"]:
        if source == "topology":
            plans = [r["plan"]["workers"] for v in payload.get("variants", [])[:1]
                     for r in v.get("replica_results", [])]
            workers = list(dict.fromkeys(plans or options.get("topology_workers", ())))
            names.append(f"topology ({' vs '.join(map(str, workers))} workers)")
        elif source == "noise":
            names.append(f"noise (a {options.get('noise_scale', 0):g} weight perturbation)")
        else:
            names.append({"seed": "init seed", "order": "data order"}.get(source, source))
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def finding_line(payload: dict[str, Any]) -> str:
    """The study in one line: the source the replicas differ by, then the recommended (else lowest-PD)
    variant vs the baseline, with CIs."""
    stats = payload.get("statistics") or {}
    base = stats.get("baseline")
    others = [r for r in payload.get("variants", []) if r["variant"] != base and r.get("pd_ratio")]
    if not others:
        return f"Only `{base}` was measured: nothing to compare." if base else ""
    pick = next((r for r in others if r["variant"] == stats.get("recommended")),
                min(others, key=lambda r: r["pd_ratio"]["estimate"]))
    ratio, delta = pick["pd_ratio"], pick["auc_delta"]
    word = {"fewer": "fewer disagreements (significant)", "more": "more disagreements (significant)"}
    verdict = next((w for k, w in word.items() if pick["verdict"].startswith(k)), pick["verdict"])
    k = stats.get("replicas")
    scope = " over eval examples only" if k == 2 else ""  # K = 2: the replica level adds nothing
    if k == 2 and "significant" in verdict:  # one pair: the interval knows nothing of replica noise
        verdict += ("; weak at K=2: the interval covers example noise only, not how much another pair "
                    "of replicas would differ (--replicas 4 or more to call it)")
    where = (f"best steps {_steps(pick['stopping'], 'best')}" if pick.get("stopping")
             else f"step {pick.get('selected_step')}")
    source = measured_source(payload)
    return (f"{f'With replicas differing by {source}: ' if source else ''}"
            f"{pick['variant']} had {_ratio(ratio['estimate'])}× {base}'s relative PD "
            f"[95% CI {_ratio(ratio['ci_lower'])}–{_ratio(ratio['ci_upper'])}{scope}] at AUC "
            f"{delta['estimate']:+.4f} [{delta['ci_lower']:+.4f}, {delta['ci_upper']:+.4f}] (K={k}, "
            f"{where}): {verdict}{convergence_note(payload)}")


def _steps(stopping: dict[str, Any], which: str) -> str:
    """``median [min–max]`` of the replicas' ``best`` or ``stopped`` steps."""
    lo, hi, med = stopping[f"{which}_min"], stopping[f"{which}_max"], stopping[f"{which}_median"]
    return f"{med:g} [{lo}–{hi}]" if lo != hi else f"{lo}"


def short_trained(payload: dict[str, Any]) -> list[str]:
    """The variants not trained to convergence: with early stopping, those with a replica that hit the
    step maximum first; at a fixed length, those whose best validation step is the last evaluation
    (still improving when training ended)."""
    out = []
    for r in payload.get("variants", []):
        stop = r.get("stopping")
        last = max((p["step"] for p in r.get("pd_over_time", [])), default=None)
        if stop and stop.get("hit_max"):
            out.append(r["variant"])
        elif not stop and last is not None and r.get("validation_auc") and r.get("selected_step") == last:
            out.append(r["variant"])
    return out


def convergence_note(payload: dict[str, Any]) -> str:
    """The finding's caveat when some variant is short-trained ("" when none is)."""
    short = short_trained(payload)
    if not short:
        return ""
    names = ", ".join(f"`{v}`" for v in short)
    steps = ((payload.get("config") or {}).get("train") or {}).get("steps")
    limit = f"train.steps={steps}" if steps else "train.steps"
    if any(r.get("stopping") for r in payload.get("variants", [])):
        return (f"; short-trained: {names} hit {limit} before the validation AUC stopped improving, so "
                "their numbers are not at convergence")
    return (f"; short-trained: {names} still improved on validation at {limit} (fixed length, no early "
            "stopping), so these numbers are not at convergence (`recsys study --patience` trains to it)")


def _ratio(x: float) -> str:
    """A PD ratio readable from 1e-6 to 1e3: two decimals, or two significant digits below 0.01."""
    return f"{x:.2f}" if x >= 0.01 else f"{x:.1e}"


def selection_sentence(stats: dict[str, Any]) -> str:
    """How the reported step was chosen, without looking at the eval split."""
    rule = stats.get("selection", "")
    if not rule:
        return ""
    n = stats.get("num_validation_examples", 0)
    held = (f" (validation: {stats.get('validation_fraction', 0):g} of train held out by record hash, "
            f"{n:,} examples)") if n else ""
    steps = ", ".join(f"`{k}` {v}" for k, v in stats.get("selected_steps", {}).items())
    return f"Model selection: {rule}{held}. Selected steps: {steps}. (K = {stats['replicas']} replicas.)"


def early_stopping_sentence(rows: list[dict[str, Any]]) -> str:
    """How the replicas stopped, and what **hit max** means."""
    stop = next(r["stopping"] for r in rows if r.get("stopping"))
    return (f"Early stopping: each replica trained until its validation {stop.get('metric', 'auc')} had not "
            f"improved for {stop.get('patience')} evaluations, at most {stop.get('max_steps')} steps "
            "(train.steps), and kept its best evaluation; AUC and PD are each replica's at its own best step "
            "(PD between replicas compares them there). **hit max (i/K)**: i of the K replicas reached the "
            "step maximum before their validation metric stopped improving: that variant is short-trained.")


def topology_sentence(rows: list[dict[str, Any]]) -> str:
    """Which worker count and all-reduce each replica used, when they are not all in process."""
    plans = [r["plan"] for row in rows[:1] for r in row.get("replica_results", [])]
    if not plans or all(p.get("workers", 1) == 1 for p in plans):
        return ""
    desc = ", ".join(f"{p['index']}: {p.get('workers', 1)} ({p.get('collective', '?')})" for p in plans)
    return (f"Topology: replica → local workers (all-reduce) = {desc}. Every global batch holds the same "
            "examples whatever the worker count (data.sharding=global_batch).")


def statistics_section(payload: dict[str, Any]) -> str:
    """The recommendation, the table of PD and AUC with CIs and verdicts, what K can detect, the method."""
    stats = payload.get("statistics")
    if not stats:
        return ""
    base = stats["baseline"]
    rows = payload["variants"]
    rec = next((r for r in rows if r["variant"] == stats["recommended"]), None)
    lines = []
    if rec is not None:
        vs = "" if rec["variant"] == base else (
            f", PD ratio {_ci(rec['pd_ratio'], digits=2)} vs `{base}` ({rec['verdict']}), "
            f"AUC delta {_ci(rec['auc_delta'], signed=True)}")
        lines += [f"**Recommended: `{rec['variant']}`** (lowest relative PD among the variants whose AUC is "
                  f"not significantly below `{base}`'s): relative PD {_ci(rec['relative_pd_ci'], pct=True)} "
                  f"at AUC {_ci(rec['auc_ci'])}{vs}.", ""]
    early = any(r.get("stopping") for r in rows)
    stopped_head = ("stopped at: median [range] | ", "---:|") if early else ("", "")
    lines += [
        f"| variant | {'best step: median [range]' if early else 'step'} | {stopped_head[0]}relative PD "
        f"(%) [95% CI] | AUC [95% CI] | PD ratio vs `{base}` [95% CI] | AUC delta vs `{base}` [95% CI] | "
        "verdict |",
        f"|---|---:|{stopped_head[1]}---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ratio = _ci(r["pd_ratio"], digits=3) if r.get("pd_ratio") else "n/a"
        stop = r.get("stopping")
        step = _steps(stop, "best") if stop else r.get("selected_step", "")
        stopped = ""
        if early:
            stopped = (_steps(stop, "stopped") + (f" **hit max ({stop['hit_max']}/{stats['replicas']})**"
                                                  if stop["hit_max"] else "") if stop else "") + " | "
        lines.append(f"| `{r['variant']}` | {step} | {stopped}{_ci(r['relative_pd_ci'], pct=True)} | "
                     f"{_ci(r['auc_ci'])} | {ratio} | {_ci(r['auc_delta'], signed=True)} | {r['verdict']} |")
    lines += ["", selection_sentence(stats), ""]
    if early:
        lines += [early_stopping_sentence(rows), ""]
    topology = topology_sentence(rows)
    if topology:
        lines += [topology, ""]
    lines += [detectable_sentence(stats, stats["replicas"], stats["num_examples"]), "",
              f"Method: {stats['method']} Verdict: the PD-ratio CI lies below 1 (fewer disagreements, "
              "significant), includes 1 (within noise) or lies above 1 (more, significant). Recommended: "
              "the lowest relative PD whose AUC-delta CI is not entirely below 0.", ""]
    return "\n".join(lines)


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
            if "relative_pd_ci_lower" in p:
                pd += f" [{_pct(p['relative_pd_ci_lower'])}, {_pct(p['relative_pd_ci_upper'])}]"
            auc = f"{p['auc']:.4f}" if "auc" in p else ""
            if "auc_ci_lower" in p:
                auc += f" [{p['auc_ci_lower']:.4f}, {p['auc_ci_upper']:.4f}]"
            cells.append(f"{pd} / {auc}" if auc else pd)
        lines.append(f"| `{v['variant']}` | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Each cell: relative PD (mean over replica pairs) / AUC (mean over replicas) at that step, "
                 "with 95% bootstrap CIs.")
    return "\n".join(lines) + "\n"


def _fmt(d: dict[str, float], scale: float = 1.0, digits: int = 4, unit: str = "") -> str:
    if d is None or math.isnan(d["mean"]):
        return "n/a"
    mean, std = d["mean"] * scale, d["std"] * scale
    if 0 < abs(mean) < 10 ** -digits:  # tiny but not zero (e.g. PD from 1e-7 weight noise): keep it visible
        return f"{mean:.2e} ± {std:.1e}{unit}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}{unit}"


def markdown_table(rows: list[dict[str, Any]], title: str = "") -> str:
    """Accuracy beside PD, one line per variant: mean ± spread (relative PD in percent)."""
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
    """results.md of a study from its results.json payload: the statistics, the spreads, PD over training."""
    title = payload.get("title", "")
    text = (f"### {title}\n\n" if title else "") + statistics_section(payload)
    text += "\n#### Accuracy and spread over replicas and pairs\n\n" + markdown_table(payload["variants"])
    over_time = over_time_table(payload["variants"])
    if over_time:
        text += "\n#### PD and AUC over training\n\n" + over_time
    figures = payload.get("figures", {})
    if figures:
        text += "\n#### Figures\n\n" + "\n".join(
            f"- [{label}]({name})" for label, name in (
                ("AUC against relative PD, 95% CIs, recommended variant marked", figures.get("frontier")),
                ("distribution of per-example relative PD with p90 / p99", figures.get("pd_distribution")))
            if name) + "\n"
    return text


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
    return atomic.write_json(path, _jsonable(payload))
