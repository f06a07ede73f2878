"""The update study: chains of model versions per variant, and the churn between successive versions.

A production ranking model is retrained again and again on newer logs; users see the difference between
the version served before and the one served now. For each variant (an activation, with or without
distillation toward the previous version) this trains K chains on the time windows of one preprocessed
data set::

    v1: from scratch on window 0 (train.steps)
    v2: warm-started from v1 on window 1 (update_steps; with distillation: toward v1's predictions)
    ...
    retrain: from scratch on windows 0..W-1 (the chain's total steps), per activation and chain

Chains differ in the chosen replica sources (default: init seed and data order), so the replica PD of
the K versions v_j is measured on the same runs. Churn (relative PD, absolute PD, flip rate) of each
update v_j -> v_j+1 and of the retrain against the last warm-started version, on the eval split (after
every window), gets bootstrap CIs over examples and chains, and a verdict against the baseline.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from typing import Any

import numpy as np

from recsys.config import loading
from recsys.config.schema import Experiment
from recsys.repro import churn_stats, summaries
from recsys.repro.stats import bootstrap_study
from recsys.study import plots, report, update_report
from recsys.study.variants import plan_replica, replica_config

UPDATE_DIR = "update"  # TensorBoard: <output>/tensorboard/update/<variant>


@dataclasses.dataclass(frozen=True)
class UpdateVariant:
    """An activation, trained with or without distillation toward the previous version."""

    activation: str
    distill_weight: float = 0.0

    @property
    def name(self) -> str:
        if not self.distill_weight:
            return self.activation
        return f"{self.activation}+distill({self.distill_weight:g})"


def update_variants(activations: tuple[str, ...], distill_weight: float) -> list[UpdateVariant]:
    """Every activation without distillation, then (with a weight > 0) every activation with it."""
    out = [UpdateVariant(a) for a in activations]
    if distill_weight > 0:
        out += [UpdateVariant(a, distill_weight) for a in activations]
    return out


def window_count(base: Experiment, requested: int) -> int:
    """The versions per chain: ``requested`` (0: every window of the spec), checked against the spec."""
    from pipelines.feature_spec import load as load_spec

    spec = load_spec(base.data.spec_dir)
    have = len(getattr(spec, "windows", ()) or ())
    if have < 2:
        raise ValueError(f"the update source needs data in time windows: {base.data.spec_dir} has "
                         f"{have or 'no'} window(s); preprocess with `recsys preprocess --windows 3`")
    count = requested or have
    if not 2 <= count <= have:
        raise ValueError(f"--windows {requested}: the data has windows 0..{have - 1}; give 2..{have}")
    return count


def version_config(base: Experiment, variant: UpdateVariant, plan: Any, windows: tuple[int, ...],
                   steps: int, parent: str, tag: str, export_dir: str = "", version: int = 0) -> Experiment:
    """One version of one chain: the replica's seeds, these windows and steps, the parent (warm start and,
    for a distilled variant, the teacher)."""
    cfg = replica_config(base, variant.activation, plan, export_dir if version else "", tag,
                         validation_fraction=0.0)
    distill = variant.distill_weight if parent else 0.0
    train = dataclasses.replace(cfg.train, steps=steps, warm_start_from=parent,
                                distill_from=parent if distill else "", distill_weight=distill)
    data = dataclasses.replace(cfg.data, windows=windows)
    export = dataclasses.replace(cfg.export, version=version) if version else cfg.export
    return dataclasses.replace(cfg, train=train, data=data, export=export,
                               name=f"{cfg.name}/{'-'.join(map(str, windows))}")


def _train(cfg: Experiment, model_dir: str, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """Train one version; its final eval predictions and the eval labels."""
    from recsys.study.runner import train_replica, train_replica_on_local_cluster

    shutil.rmtree(model_dir, ignore_errors=True)
    if workers > 1:
        out = train_replica_on_local_cluster(cfg, model_dir, workers)
    else:
        out = train_replica(cfg, model_dir)
    return (np.asarray(out["predictions"], dtype=np.float64).reshape(-1),
            np.asarray(out["labels"]).reshape(-1))


def run_update_study(base: Experiment, options: Any, output: str, windows: int = 0, update_steps: int = 0,
                     distill_weight: float = 0.0, log=print) -> dict[str, Any]:
    """Train every variant's chains, measure update churn and replica PD with CIs, write the report.

    ``options``: the study's :class:`~recsys.study.runner.StudyOptions` (activations, replicas = chains,
    sources that differ between chains, baseline, bootstrap); returns the results.json payload.
    """
    count = window_count(base, windows)
    steps_update = update_steps or base.train.steps
    chain_sources = tuple(s for s in options.sources if s != "update") or ("seed", "order")
    if "topology" in chain_sources:
        raise ValueError("the update source does not combine with topology; use seed, order or noise")
    variants = update_variants(options.activations, distill_weight)
    baseline = options.baseline or variants[0].name
    if baseline not in [v.name for v in variants]:
        raise ValueError(f"baseline {baseline!r} is not one of the variants {[v.name for v in variants]}")
    k = options.replicas
    distilled = len(variants) - len(options.activations)  # their v1 is the undistilled v1
    runs_per_chain = len(options.activations) * (count + 1) + distilled * (count - 1)  # + 1: the retrain
    total, done, start = k * runs_per_chain, 0, time.perf_counter()
    preds: dict[str, list[list[np.ndarray]]] = {v.name: [] for v in variants}  # variant -> chain -> versions
    retrain: dict[str, list[np.ndarray]] = {a: [] for a in options.activations}
    labels: np.ndarray | None = None

    def step(cfg: Experiment, model_dir: str, what: str) -> np.ndarray:
        nonlocal done, labels
        log(f"{what} — {done}/{total} done, {_eta(done, total, time.perf_counter() - start)}")
        p, y = _train(cfg, model_dir, options.workers)
        if labels is None:
            labels = y
        elif not np.array_equal(labels, y):
            raise RuntimeError("versions were evaluated on different examples (eval order changed)")
        done += 1
        return p

    for c in range(k):
        for v in variants:
            plan = plan_replica(v.name, c, chain_sources, options.base_seed, options.noise_scale,
                                options.workers)
            tag = summaries.group_tag(v.name)
            chain, parent = [], ""
            for j in range(count):
                if j == 0 and v.distill_weight:  # v1 has no parent: the undistilled variant's v1 is it
                    undistilled = summaries.group_tag(v.activation)
                    parent = os.path.join(output, "runs", undistilled, f"chain_{c}", "v1")
                    chain.append(preds[v.activation][c][0])
                    continue
                model_dir = os.path.join(output, "runs", tag, f"chain_{c}", f"v{j + 1}")
                cfg = version_config(base, v, plan, (j,), base.train.steps if j == 0 else steps_update,
                                     parent, tag, options.export_dir if c == 0 else "", j + 1)
                chain.append(step(cfg, model_dir, f"{v.name!r} chain {c + 1}/{k}: v{j + 1} on window {j}"
                                  + (" (warm start)" if parent else "")))
                parent = model_dir
            preds[v.name].append(chain)
        for a in options.activations:  # the from-scratch retrain on every window, same total steps
            plan = plan_replica(a, c, chain_sources, options.base_seed, options.noise_scale, options.workers)
            cfg = version_config(base, UpdateVariant(a), plan, tuple(range(count)),
                                 base.train.steps + (count - 1) * steps_update, "", summaries.group_tag(a))
            model_dir = os.path.join(output, "runs", summaries.group_tag(a), f"chain_{c}", "retrain")
            retrain[a].append(step(cfg, model_dir,
                                   f"{a!r} chain {c + 1}/{k}: retrain on windows 0..{count - 1}"))
    assert labels is not None
    payload = analyse(variants, preds, retrain, labels, baseline, options, count, steps_update, base)
    payload["elapsed_seconds"] = time.perf_counter() - start
    return payload


def _eta(done: int, total: int, elapsed: float) -> str:
    if done == 0:
        return "ETA unknown"
    left = elapsed / done * (total - done)
    return f"ETA {int(left // 60)}m{int(left % 60):02d}s"


def analyse(variants: list[UpdateVariant], preds: dict[str, list[list[np.ndarray]]],
            retrain: dict[str, list[np.ndarray]], labels: np.ndarray, baseline: str, options: Any,
            count: int, update_steps: int, base: Experiment) -> dict[str, Any]:
    """Churn per update and of the retrain, replica PD and AUC per version: every number with its CI."""
    names = [v.name for v in variants]
    draws, seed = options.bootstrap_draws, options.bootstrap_seed
    at = {n: [np.stack([chain[j] for chain in preds[n]]) for j in range(count)] for n in names}
    updates = []
    for j in range(count - 1):
        stats = churn_stats.bootstrap_churn({n: (at[n][j], at[n][j + 1]) for n in names}, baseline, draws,
                                            seed)
        updates.append({"update": f"v{j + 1}->v{j + 2}", "window": j + 1,
                        "variants": [s.as_dict() for s in stats]})
    versions = []
    for j in range(count):
        replica = bootstrap_study({n: at[n][j] for n in names}, labels, baseline, draws, seed)
        versions.append({"version": f"v{j + 1}", "windows": [j],
                         "variants": [replica.variant(n).as_dict() for n in names]})
    retrain_churn = churn_stats.bootstrap_churn(
        {v.name: (np.stack(retrain[v.activation]), at[v.name][-1]) for v in variants}, baseline, draws, seed)
    return {
        "kind": "update", "title": options.title, "baseline": baseline, "variants": names,
        "chains": options.replicas, "windows": count, "update_steps": update_steps,
        "first_steps": base.train.steps, "num_eval_examples": int(len(labels)),
        "sources": [s for s in options.sources if s != "update"] or ["seed", "order"],
        "config": loading.to_dict(base), "options": dataclasses.asdict(options),
        "updates": updates, "versions": versions,
        "retrain": {"versus": f"v{count}", "variants": [s.as_dict() for s in retrain_churn]},
        "method": churn_stats.method(draws, seed),
    }


def write_outputs(payload: dict[str, Any], output: str) -> None:
    """results.json, results.md, the churn frontier and one TensorBoard run per variant."""
    from recsys.study import runner

    report.write_json(os.path.join(output, runner.RESULTS_JSON), payload)
    with open(os.path.join(output, runner.RESULTS_MD), "w", encoding="utf-8") as fh:
        fh.write(update_report.markdown(payload))
    last, version = payload["updates"][-1], payload["versions"][-1]
    rows = [{"variant": c["variant"], "relative_pd_ci": c["relative_pd"],
             "auc_ci": next(v["auc"] for v in version["variants"] if v["variant"] == c["variant"])}
            for c in last["variants"]]
    plots.frontier_plot(rows, os.path.join(output, runner.FRONTIER_PNG), payload["title"],
                        baseline=payload["baseline"],
                        xlabel=f"update churn {last['update']}: relative PD (%)  ← fewer changes for users")
    write_dashboards(payload, os.path.join(output, "tensorboard"))


def write_dashboards(payload: dict[str, Any], tb_root: str) -> None:
    """One run per variant: churn per update (step = update index) and replica PD and AUC per version."""
    from recsys.study import dashboards

    series: dict[str, dict[int, dict[str, float]]] = {n: {} for n in payload["variants"]}
    for u, update in enumerate(payload["updates"], start=1):
        for c in update["variants"]:
            series[c["variant"]].setdefault(u, {}).update(_scalars("churn/relative_pd", c["relative_pd"]))
            series[c["variant"]][u].update(_scalars("churn/flip_rate", c["flip_rate"]))
            series[c["variant"]][u].update(_scalars("churn/absolute_pd", c["absolute_pd"]))
    for j, version in enumerate(payload["versions"], start=1):
        for v in version["variants"]:
            series[v["variant"]].setdefault(j, {}).update(_scalars("version/replica_relative_pd",
                                                                   v["relative_pd"]))
            series[v["variant"]][j].update(_scalars("version/auc", v["auc"]))
    for name, s in series.items():
        dashboards.write_series(tb_root, f"{UPDATE_DIR}/{summaries.group_tag(name)}", s)


def _scalars(tag: str, interval: dict[str, float]) -> dict[str, float]:
    return {tag: interval["estimate"], f"{tag}_ci_lower": interval["ci_lower"],
            f"{tag}_ci_upper": interval["ci_upper"]}
