"""``recsys reproduce``'s verdict and certificate.

:func:`verdict` compares the original export with the rebuild: equal weights digests, or relative PD,
absolute PD and flip rate on the eval split with 95% bootstrap intervals over the examples
(:func:`recsys.repro.churn_stats.bootstrap_churn` with one chain). :func:`write_certificate` writes the
check's differences, the verdict and the commands as ``certificate.json`` and ``certificate.md``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from pipelines import atomic
from recsys.reproduce.check import Check


def verdict(original: str, rebuilt: str, data: str, draws: int = 1000, seed: int = 0,
            threshold: float = 0.5) -> dict[str, Any]:
    """Equal weights digests, or the PD between the two exports on the eval split with 95% intervals."""
    import pipelines.feature_spec as feature_spec
    from recsys.repro.churn_stats import bootstrap_churn, method
    from recsys.repro.compare import eval_records, export_weights_digest, score

    out: dict[str, Any] = {"original_weights_sha256": export_weights_digest(original),
                           "rebuilt_weights_sha256": export_weights_digest(rebuilt)}
    out["reproduced"] = out["original_weights_sha256"] == out["rebuilt_weights_sha256"]
    if out["reproduced"]:
        return out
    records, _ = eval_records(feature_spec.load(data))
    a, b = score(original, records), score(rebuilt, records)
    (stats,) = bootstrap_churn({"rebuild": (a[None, :], b[None, :])}, draws=draws, seed=seed,
                               threshold=threshold)
    out.update(examples=len(records), relative_pd=stats.relative_pd.as_dict(),
               absolute_pd=stats.absolute_pd.as_dict(), flip_rate=stats.flip_rate.as_dict(),
               flip_threshold=threshold, method=method(draws, seed, threshold=threshold))
    return out


def verdict_lines(v: dict[str, Any]) -> list[str]:
    """The verdict in words: bit for bit, or the three churn figures with their intervals."""
    digests = f"(original {v['original_weights_sha256'][:16]}, rebuild {v['rebuilt_weights_sha256'][:16]})"
    if v["reproduced"]:
        return [f"reproduced bit for bit: same weights digest {v['rebuilt_weights_sha256']}"]

    def ci(m: dict[str, float]) -> str:
        return f"{m['estimate']:.4g} (95% CI {m['ci_lower']:.4g} to {m['ci_upper']:.4g})"

    return [f"not reproduced: the weights differ {digests}",
            f"  on {v['examples']} eval examples: relative PD {ci(v['relative_pd'])}; absolute PD "
            f"{ci(v['absolute_pd'])}; flip rate@{v['flip_threshold']:g} {ci(v['flip_rate'])}"]


def write_certificate(directory: str, chk: Check, v: dict[str, Any], commands: dict[str, str],
                      seconds: float) -> tuple[str, str]:
    """``certificate.json`` and ``certificate.md`` in ``directory``: the digests, differences, verdict."""
    cert = {"export": chk.export, "data": chk.config.data.spec_dir, "workers": chk.workers,
            "differences": [dataclasses.asdict(d) for d in chk.differences], "verdict": v,
            "commands": commands, "rebuild_seconds": round(seconds, 1)}
    js = atomic.write_json(os.path.join(directory, "certificate.json"), cert)
    lines = ["# Reproduction certificate", "", f"- export: `{chk.export}`",
             f"- original weights sha256: `{v['original_weights_sha256']}`",
             f"- rebuilt weights sha256: `{v['rebuilt_weights_sha256']}`",
             f"- data: `{chk.config.data.spec_dir}`; workers: {chk.workers}; rebuild: {seconds:.1f} s", "",
             "## Verdict", "", *verdict_lines(v), "", "## Differences found before the rebuild", ""]
    lines += [f"- {d}" for d in chk.differences] or ["- none"]
    lines += ["", "## Commands", ""] + [f"- {k}: `{c}`" for k, c in commands.items()]
    md = atomic.write_text(os.path.join(directory, "certificate.md"), "\n".join(lines) + "\n")
    return js, md
