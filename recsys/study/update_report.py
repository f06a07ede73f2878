"""results.md and the one-line finding of an update study (see :mod:`recsys.study.update`)."""

from __future__ import annotations

from typing import Any

from recsys.study.report import _ci, _ratio


def _by_variant(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["variant"]: r for r in rows}


def update_table(update: dict[str, Any], version: dict[str, Any], baseline: str) -> str:
    """One update: churn (relative, absolute, flip rate) with CIs and the verdict, beside the replica PD
    and AUC of the new version, so a reader sees which of update churn and replica PD is larger."""
    versions = _by_variant(version["variants"])
    lines = [f"| variant | churn: relative PD [95% CI] | absolute PD | flip rate @0.5 | churn ratio vs "
             f"`{baseline}` | verdict | replica PD of {version['version']} | AUC of {version['version']} |",
             "|---|---:|---:|---:|---:|---|---:|---:|"]
    for c in update["variants"]:
        v = versions[c["variant"]]
        ratio = _ci(c["ratio"], digits=3) if c.get("ratio") else "n/a"
        lines.append(f"| `{c['variant']}` | {_ci(c['relative_pd'], pct=True)} | "
                     f"{_ci(c['absolute_pd'], digits=5)} | {_ci(c['flip_rate'], pct=True)} | {ratio} | "
                     f"{c['verdict']} | {_ci(v['relative_pd'], pct=True)} | {_ci(v['auc'])} |")
    return "\n".join(lines)


def retrain_table(payload: dict[str, Any]) -> str:
    """Each variant's last warm-started version against a from-scratch retrain on every window."""
    r = payload["retrain"]
    lines = [f"| variant | {r['versus']} vs retrain: relative PD [95% CI] | absolute PD | flip rate @0.5 |",
             "|---|---:|---:|---:|"]
    for c in r["variants"]:
        lines.append(f"| `{c['variant']}` | {_ci(c['relative_pd'], pct=True)} | "
                     f"{_ci(c['absolute_pd'], digits=5)} | {_ci(c['flip_rate'], pct=True)} |")
    return "\n".join(lines)


def markdown(payload: dict[str, Any]) -> str:
    """The whole report: one table per update, the retrain table, how the numbers were made."""
    base = payload["baseline"]
    title = payload.get("title", "")
    lines = [f"### {title}: update churn" if title else "### Update churn", "",
             f"**Finding:** {finding_line(payload)}", "",
             f"{payload['chains']} chains per variant, {payload['windows']} versions each: v1 from scratch "
             f"on window 0 ({payload['first_steps']} steps), then each v(j+1) warm-started from v(j) on "
             f"window j ({payload['update_steps']} steps). Chains differ in: "
             f"{', '.join(payload['sources'])}. Every number is on the eval split "
             f"({payload['num_eval_examples']:,} examples, after every window), at each version's last "
             "step.", ""]
    for update, version in zip(payload["updates"], payload["versions"][1:], strict=True):
        lines += [f"#### Update {update['update']} (window {update['window']})", "",
                  update_table(update, version, base), ""]
    lines += ["#### Warm start against a from-scratch retrain", "",
              "The same activation retrained from scratch on every window for the chain's total steps, "
              "against the last warm-started version of the same chain (a retrain is the other way to ship "
              "an update).", "", retrain_table(payload), "",
              f"Method: {payload['method']} Verdict: the churn-ratio CI lies below 1 (fewer changes than the "
              "baseline, significant), includes 1 (within noise) or lies above 1. Replica PD and AUC of a "
              "version: the replica study's bootstrap over the same K chains.", ""]
    return "\n".join(lines)


def finding_line(payload: dict[str, Any]) -> str:
    """The last update in one line: the baseline's churn against its replica PD, and the variant with the
    lowest churn against the baseline, with CIs."""
    base = payload["baseline"]
    update, version = payload["updates"][-1], payload["versions"][-1]
    churn = _by_variant(update["variants"])
    replica = _by_variant(version["variants"])
    b = churn[base]
    larger = b["relative_pd"]["estimate"] > replica[base]["relative_pd"]["estimate"]
    bigger = "larger" if larger else "smaller"
    text = (f"update {update['update']}: `{base}` churn {_ci(b['relative_pd'], pct=True)} relative PD, flip "
            f"rate {_ci(b['flip_rate'], pct=True)}; {bigger} than its replica PD "
            f"{_ci(replica[base]['relative_pd'], pct=True)}")
    others = [c for c in update["variants"] if c["variant"] != base and c.get("ratio")]
    if others:
        best = min(others, key=lambda c: c["ratio"]["estimate"])
        r = best["ratio"]
        text += (f". `{best['variant']}`: {_ratio(r['estimate'])}× the baseline's churn [95% CI "
                 f"{_ratio(r['ci_lower'])}–{_ratio(r['ci_upper'])}], {best['verdict']}, AUC delta "
                 f"{_ci(replica[best['variant']]['auc_delta'], signed=True)} "
                 f"(K={payload['chains']} chains)")
    return text
