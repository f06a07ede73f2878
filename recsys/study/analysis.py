"""From every replica's eval predictions to the study's statistics, per step and final, and its dashboards.

The study runner and the dashboard test both come through :func:`analyse`, so what TensorBoard shows is
what results.json says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from recsys.repro import accuracy
from recsys.repro.stats import StudyStats, bootstrap_study
from recsys.study import dashboards
from serving.pd import pairwise_pd


@dataclasses.dataclass(frozen=True)
class VariantRecords:
    """One variant's replicas: eval predictions at every evaluation step, and each replica's plan."""

    variant: str
    records: tuple[dict[int, np.ndarray], ...]  # per replica: {step: predictions on the eval examples}
    plans: tuple[dict[str, Any], ...]
    # per replica: {step: predictions on the validation split held out of train}; () without one
    validation: tuple[dict[int, np.ndarray], ...] = ()
    validation_labels: np.ndarray | None = None
    # per replica: its run's early stopping (stopped_step, best_step, hit_max; the fingerprint's); ()
    # without early stopping. With it each replica is reported at its own best step.
    stops: tuple[dict[str, Any], ...] = ()

    def at(self, step: int) -> np.ndarray:
        return np.stack([np.asarray(r[step], dtype=np.float64).reshape(-1) for r in self.records])

    def steps(self) -> list[int]:
        return sorted(set.intersection(*[set(r) for r in self.records]))

    def validation_auc(self) -> dict[int, float]:
        """Mean validation AUC over the replicas at every step they share ({} without validation)."""
        if not self.validation or self.validation_labels is None:
            return {}
        y = np.asarray(self.validation_labels, dtype=np.float64).reshape(-1)
        common = sorted(set.intersection(*[set(r) for r in self.validation]) & set(self.steps()))
        return {s: float(np.mean([accuracy.accuracy_metrics(y, np.asarray(r[s]).reshape(-1))["auc"]
                                  for r in self.validation])) for s in common}

    @property
    def early_stopped(self) -> bool:
        """Whether every replica trained with early stopping (each is then reported at its best step)."""
        return bool(self.stops) and all(s and s.get("best_step") is not None for s in self.stops)

    def replica_steps(self) -> tuple[int, ...]:
        """Each replica's reported step: its own best validation step with early stopping, else the
        variant's common :meth:`selected_step`."""
        if self.early_stopped:
            return tuple(int(s["best_step"]) for s in self.stops)
        return (self.selected_step(),) * len(self.records)

    def selected_step(self) -> int:
        """The reported step: highest mean validation AUC (earliest on ties), else the last step. With
        early stopping: the median of the replicas' best steps (for display; see :meth:`replica_steps`)."""
        if self.early_stopped:
            return int(np.median(self.replica_steps()))
        auc = self.validation_auc()
        if not auc:
            return self.steps()[-1]
        best = max(auc.values())
        return min(s for s, a in auc.items() if a == best)

    def final(self) -> np.ndarray:
        """Every replica's eval predictions at its reported step."""
        return np.stack([np.asarray(r[s], dtype=np.float64).reshape(-1)
                         for r, s in zip(self.records, self.replica_steps(), strict=True)])

    def stopping(self) -> dict[str, Any]:
        """The replicas' stopping and best steps (median, range) and how many hit the step maximum
        before their validation metric stopped improving ({} without early stopping)."""
        if not self.early_stopped:
            return {}
        stopped, best = [int(s["stopped_step"]) for s in self.stops], list(self.replica_steps())
        return {"stopped_median": float(np.median(stopped)), "stopped_min": min(stopped),
                "stopped_max": max(stopped), "best_median": float(np.median(best)), "best_min": min(best),
                "best_max": max(best), "hit_max": sum(bool(s.get("hit_max")) for s in self.stops),
                "max_steps": int(self.stops[0].get("max_steps", 0)),
                "metric": self.stops[0].get("metric"), "patience": self.stops[0].get("patience")}


SELECTION_RULE = ("per variant, the evaluation step with the highest mean AUC over its replicas on the "
                  "validation split held out of train (earliest on ties); PD and AUC are then measured on "
                  "the untouched eval split at that step")
NO_SELECTION_RULE = "no validation split: the last evaluation step (train.steps)"
EARLY_STOPPING_RULE = ("per replica, its own best evaluation on the validation split held out of train "
                       "(early stopping: training stops after `patience` evaluations without a better "
                       "validation {metric}, at most train.steps steps, and keeps the best one); AUC and PD "
                       "are then measured on the untouched eval split, PD between replicas each at its own "
                       "best step")


@dataclasses.dataclass(frozen=True)
class Analysis:
    """Statistics at every common evaluation step (the last one is the final, reported one)."""

    by_step: dict[int, StudyStats]
    final: StudyStats  # at each variant's selected step
    over_time: dict[str, list[dict[str, Any]]]  # variant -> per-step points for results.json
    selected: dict[str, int] = dataclasses.field(default_factory=dict)  # variant -> reported step
    validation_auc: dict[str, dict[int, float]] = dataclasses.field(default_factory=dict)
    selection: str = NO_SELECTION_RULE


def _point(step: int, stats: StudyStats, variant: str, preds: np.ndarray, labels: np.ndarray) -> dict:
    s = stats.variant(variant)
    pairs = pairwise_pd(preds, percentiles=())
    accs = [accuracy.accuracy_metrics(labels, p) for p in preds]
    point = {"step": int(step), "relative_pd": s.relative_pd.estimate,
             "relative_pd_ci_lower": s.relative_pd.lower, "relative_pd_ci_upper": s.relative_pd.upper,
             "relative_pd_min": pairs.relative.min, "relative_pd_max": pairs.relative.max,
             "absolute_pd": s.absolute_pd.estimate, "auc": s.auc.estimate, "auc_ci_lower": s.auc.lower,
             "auc_ci_upper": s.auc.upper, "logloss": float(np.mean([a["logloss"] for a in accs])),
             "verdict": s.verdict}
    if s.pd_ratio is not None:
        point.update(pd_ratio=s.pd_ratio.estimate, pd_ratio_ci_lower=s.pd_ratio.lower,
                     pd_ratio_ci_upper=s.pd_ratio.upper)
    return point


def analyse(variants: Sequence[VariantRecords], labels: np.ndarray, baseline: str | None = None,
            draws: int = 1000, seed: int = 0) -> Analysis:
    """Bootstrap statistics at every evaluation step all replicas share, baseline comparisons included."""
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    steps = sorted(set.intersection(*[set(r) for v in variants for r in v.records]))
    if not steps:
        raise ValueError("the replicas share no evaluation step")
    by_step = {step: bootstrap_study({v.variant: v.at(step) for v in variants}, y, baseline, draws, seed)
               for step in steps}
    over_time = {v.variant: [_point(step, by_step[step], v.variant, v.at(step), y) for step in steps]
                 for v in variants}
    selected = {v.variant: v.selected_step() for v in variants}
    early = any(v.early_stopped for v in variants)
    if not early and len(set(selected.values())) == 1 and next(iter(selected.values())) in by_step:
        final = by_step[next(iter(selected.values()))]
    else:  # each variant at its own selected step, compared with the baseline at the baseline's
        final = bootstrap_study({v.variant: v.final() for v in variants}, y, baseline,
                                draws, seed)
    val_auc = {v.variant: v.validation_auc() for v in variants}
    for v in variants:
        for point in over_time[v.variant]:
            if point["step"] in val_auc[v.variant]:
                point["validation_auc"] = val_auc[v.variant][point["step"]]
            point["selected"] = point["step"] in set(v.replica_steps())
    rule = SELECTION_RULE if all(val_auc.values()) else NO_SELECTION_RULE
    if early:
        metric = next(v.stopping().get("metric") for v in variants if v.early_stopped)
        rule = EARLY_STOPPING_RULE.format(metric=metric or "AUC")
    return Analysis(by_step=by_step, final=final, over_time=over_time, selected=selected,
                    validation_auc=val_auc, selection=rule)


def _replica_pd(preds: np.ndarray, index: int) -> float:
    """Mean relative PD of replica ``index`` against each other replica of its variant."""
    others = [j for j in range(preds.shape[0]) if j != index]
    return float(np.mean([pairwise_pd([preds[index], preds[j]], percentiles=()).relative.mean
                          for j in others]))


def write_dashboards(tb_root: str, variants: Sequence[VariantRecords], labels: np.ndarray,
                     result: Analysis, sources: tuple[str, ...]) -> None:
    """The study's TensorBoard logdir: layout, one PD/AUC run per variant, one HParams row per replica."""
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    dashboards.write_layout(tb_root, result.final.baseline)
    sessions = []
    for v in variants:
        series = {}
        for step, stats in result.by_step.items():
            pairs = pairwise_pd(v.at(step), percentiles=())
            series[step] = dashboards.step_scalars(stats.variant(v.variant), pairs.relative.min,
                                                   pairs.relative.max)
        dashboards.write_variant_series(tb_root, v.variant, series)
        final, last = v.final(), max(result.by_step)
        vstats = result.final.variant(v.variant)
        for i, plan in enumerate(v.plans):
            acc = accuracy.accuracy_metrics(y, final[i])
            metrics = {"replica/relative_pd": _replica_pd(final, i), "replica/auc": acc["auc"],
                       "replica/logloss": acc["logloss"], "variant/relative_pd": vstats.relative_pd.estimate,
                       "variant/auc": vstats.auc.estimate}
            sessions.append(dashboards.ReplicaSession(
                variant=v.variant, index=i, hparams=dashboards.replica_hparams(v.variant, plan, sources),
                metrics=metrics, step=last))
    dashboards.write_hparams(tb_root, sessions)
