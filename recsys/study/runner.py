"""Run a study: for each activation variant train K replicas, then measure PD beside accuracy.

Replicas of a variant differ only in the chosen nondeterminism sources (init seed, data order,
numerical noise); everything else comes from one base config and is recorded in results.json.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from recsys.config import loading
from recsys.config.schema import Experiment
from recsys.repro import accuracy, summaries
from recsys.repro.slices import pd_by_prediction_bucket
from recsys.study import analysis, cost, dashboards, plots, report, rerun
from recsys.study.variants import DEFAULT_TOPOLOGY_WORKERS, check_topology, plan_replica, replica_config
from recsys.train.progress import duration
from serving.pd import pairwise_pd

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
FRONTIER_PNG = "frontier.png"
DISTRIBUTION_PNG = "pd_distribution.png"


@dataclasses.dataclass(frozen=True)
class StudyOptions:
    activations: tuple[str, ...]
    replicas: int = 4
    sources: tuple[str, ...] = ("seed", "order")
    noise_scale: float = 1e-7
    base_seed: int = 0
    title: str = ""
    export_dir: str = ""  # export replica i of a variant as <export_dir>/<variant>/<i + 1>
    workers: int = 1  # > 1: each replica is a supervised local MultiWorkerMirroredStrategy job
    baseline: str = ""  # the variant the others are compared with ("": the first listed)
    bootstrap_draws: int = 1000
    bootstrap_seed: int = 0
    topology_workers: tuple[int, ...] = DEFAULT_TOPOLOGY_WORKERS  # the "topology" source's worker counts
    # Share of train held out for step selection (None: the config's data.validation_fraction).
    validation_fraction: float | None = None
    # Early stopping per replica (train.early_stopping_patience: evaluations without a better validation
    # AUC; train.steps is the maximum). None: the config's; 0: a fixed train.steps.
    patience: int | None = None
    windows: int = 0  # the update source: versions per chain (0: every window of the data)
    update_steps: int = 0  # the update source: steps per update (0: train.steps)
    distill_weight: float = 0.0  # the update source: > 0 adds a distilled variant per activation
    max_cost: float = 0.0  # > 0: recommend only variants costing at most this × the baseline (study/cost.py)


def _log(msg: str) -> None:
    print(f"[study] {msg}", file=sys.stderr, flush=True)


def replica_done_line(done: int, total: int, elapsed: float) -> str:
    """``3/8 replicas trained, 2m05s elapsed, ~3m28s left`` (the time left at the mean replica time)."""
    text = f"{done}/{total} replicas trained, {duration(elapsed)} elapsed"
    return text + (f", ~{duration(elapsed / done * (total - done))} left" if 0 < done < total else "")


def train_replica(config: Experiment, model_dir: str) -> dict[str, Any]:
    """Train one replica in this process; eval predictions at every evaluation, labels, metrics."""
    from recsys.train import trainer

    result = trainer.train(config, model_dir, predict_eval=True)
    return _replica_outcome(result.eval_history, result.eval_labels, result.train_seconds,
                            result.export_path, result.validation_history, result.validation_labels,
                            result.early_stopping)


def train_replica_on_local_cluster(config: Experiment, model_dir: str, workers: int) -> dict[str, Any]:
    """Train one replica as a supervised ``workers``-process MultiWorkerMirroredStrategy job.

    The all-reduce across workers is then one of the replica's real nondeterminism sources.
    """
    from recsys.launch.local import LocalJobSpec, run_local_job
    from recsys.train.run_dir import RunDir

    os.makedirs(model_dir, exist_ok=True)
    config_path = loading.save(config, model_dir)
    command = [sys.executable, "-m", "recsys.cli", "train", f"--config={config_path}",
               f"--model_dir={model_dir}"]
    job = run_local_job(LocalJobSpec(command=command, num_workers=workers,
                                     log_dir=os.path.join(model_dir, "workers"), stream_logs=False,
                                     backup_dir=RunDir(model_dir).backup))
    if not job.ok:
        raise RuntimeError(f"replica job in {model_dir} failed: {job.message}")
    with np.load(RunDir(model_dir).eval_predictions) as saved:
        history = list(zip(saved["steps"].tolist(), saved["predictions"], strict=True))
        labels = saved["labels"]
        val_history, val_labels = [], None
        if "val_predictions" in saved:
            val_history = list(zip(saved["val_steps"].tolist(), saved["val_predictions"], strict=True))
            val_labels = saved["val_labels"]
    stop = (RunDir(model_dir).read_fingerprint() or {}).get("early_stopping")
    return _replica_outcome(history, labels, job.seconds, job.export_path, val_history, val_labels, stop)


def _replica_outcome(history, labels, seconds: float, export_path, val_history=(),
                     val_labels=None, early_stopping: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the study keeps of a replica; ``predictions``: at its kept step (the best one with early
    stopping, else the last)."""
    kept = early_stopping["best_step"] if early_stopping else history[-1][0]
    preds = dict(history)[kept]
    return {"predictions": preds, "labels": labels, "records": history,
            "validation": list(val_history), "validation_labels": val_labels,
            "metrics": accuracy.accuracy_metrics(labels, preds), "train_seconds": seconds,
            "export_path": export_path, "early_stopping": early_stopping}


def _collective(config: Experiment, workers: int) -> str:
    """The all-reduce a replica used: none in process; on CPU, AUTO resolves to RING (NCCL is GPU-only)."""
    if workers <= 1:
        return "none (1 worker)"
    c = config.determinism.collective
    return "RING (AUTO on CPU)" if c == "AUTO" else c


def recorded_fraction(base: Experiment, options: StudyOptions) -> float:
    """The validation share of train the replicas held out."""
    if options.validation_fraction is None:
        return base.data.validation_fraction
    return options.validation_fraction


def _claim_exports(options: StudyOptions, overwrite: bool) -> None:
    """Before any training: each replica's export version must be free (or, with overwrite, freed)."""
    if not options.export_dir:
        return
    taken = [path for activation in options.activations for r in range(options.replicas)
             if os.path.exists(path := os.path.join(options.export_dir, summaries.group_tag(activation),
                                                    str(r + 1)))]
    if taken and not overwrite:
        raise FileExistsError(f"exports already exist: {taken}; choose another --export_dir or pass "
                              "--overwrite")
    for path in taken:
        shutil.rmtree(path)


def run_study(base: Experiment, options: StudyOptions, output: str, overwrite: bool = False,
              sections: Mapping[str, Any] | None = None,
              shared: dict[tuple, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Train every (variant, replica), then write results.json / results.md with bootstrap CIs, verdicts and
    the recommended variant, frontier.png, pd_distribution.png and the TensorBoard logdir.

    ``sections``: the command settings saved in ``<output>/config.yaml`` beside the experiment.
    ``shared``: replica outcomes by (variant, seeds, workers), reused instead of retrained when another
    study already trained that exact replica (PD by source: replica 0 is the same run in every study).
    A finished study of the same experiment and options in ``output`` is a no-op (its saved results are
    returned, without ``shared``); another one is refused unless ``overwrite``."""
    if options.replicas < 2:
        raise ValueError(
            f"a study needs at least 2 replicas per variant to measure PD, got {options.replicas}"
        )
    if options.baseline and options.baseline not in options.activations:
        raise ValueError(f"baseline {options.baseline!r} is not one of the variants "
                         f"{list(options.activations)}")
    results_path = os.path.join(output, RESULTS_JSON)
    if os.path.exists(results_path) and not overwrite:
        if shared is not None:  # the caller needs the replicas' outcomes, which results.json does not hold
            raise FileExistsError(f"{results_path} exists; choose another --output or pass --overwrite")
        saved = rerun.finished_study(results_path, base, options)  # raises on another config or settings
        if saved is not None:
            _log(f"{output} already holds this study, finished with {len(options.activations)} x "
                 f"{options.replicas} replicas trained; nothing to do (--overwrite starts over)")
            return saved
    if overwrite and os.path.exists(results_path):
        os.remove(results_path)  # interrupted from here on, the output holds no finished study
    if "update" not in options.sources:
        for warning in _early_stopping_warnings(base, options):
            _log(f"warning: {warning}")
    if "topology" in options.sources:
        for warning in check_topology(options.topology_workers, options.replicas, base.data.batch_size):
            _log(f"warning: {warning}")
    _claim_exports(options, overwrite)
    os.makedirs(output, exist_ok=True)
    loading.save(base, output, sections)
    tb_root = os.path.join(output, dashboards.TB_DIR)
    shutil.rmtree(tb_root, ignore_errors=True)  # dashboards of an overwritten study must not linger
    if "update" in options.sources:
        return _run_update(base, options, output)

    total = len(options.activations) * options.replicas
    done, start = 0, time.perf_counter()
    variants_out, recorded = [], []
    configs: dict[str, Experiment] = {}  # replica 0's config per variant: what the cost is measured on
    labels: np.ndarray | None = None  # every replica of every variant must be evaluated on the same examples
    for v_index, activation in enumerate(options.activations):
        tag = summaries.group_tag(activation)
        replicas, records, val_records, stops, val_labels = [], [], [], [], None
        for r in range(options.replicas):
            plan = plan_replica(activation, r, options.sources, options.base_seed, options.noise_scale,
                                options.workers, options.topology_workers)
            where = f"{plan.workers}-worker local cluster" if plan.workers > 1 else "in process"
            _log(f"variant {v_index + 1}/{len(options.activations)} {activation!r}: replica "
                 f"{r + 1}/{options.replicas} (seed={plan.seed}, data_seed={plan.data_seed}, "
                 f"noise={plan.noise_scale:g}, {where})")
            model_dir = os.path.join(output, "runs", tag, f"replica_{r}")
            shutil.rmtree(model_dir, ignore_errors=True)  # a replica always starts fresh
            cfg = replica_config(base, activation, plan, options.export_dir, tag,
                                 options.validation_fraction, options.patience)
            configs.setdefault(activation, cfg)
            key = (activation, plan.seed, plan.data_seed, plan.noise_seed, plan.noise_scale, plan.workers)
            if shared is not None and key in shared:
                out = shared[key]
                _log("  the same replica (variant, seeds, workers) was trained by an earlier study: reused")
            elif plan.workers > 1:
                out = train_replica_on_local_cluster(cfg, model_dir, plan.workers)
            else:
                out = train_replica(cfg, model_dir)
            if shared is not None:
                shared[key] = out
            if labels is None:
                labels = out["labels"]
            elif not np.array_equal(labels, out["labels"]):
                raise RuntimeError("replicas were evaluated on different examples (eval order changed)")
            if out["validation"]:
                if val_labels is not None and not np.array_equal(val_labels, out["validation_labels"]):
                    raise RuntimeError("replicas were validated on different examples")
                val_labels = out["validation_labels"]
            records.append(dict(out["records"]))  # {step: eval predictions}
            val_records.append(dict(out["validation"]))  # {step: validation predictions}
            stops.append(out["early_stopping"])
            replicas.append({"plan": {**plan.as_dict(), "collective": _collective(cfg, plan.workers)},
                             "train_seconds": out["train_seconds"], "export_path": out["export_path"],
                             "early_stopping": out["early_stopping"]})
            done += 1
            m, es = out["metrics"], out["early_stopping"]
            where = "" if not es else (
                f" (best step {es['best_step']} of {es['stopped_step']} trained"
                f"{', hit the maximum before converging' if es['hit_max'] else ''})")
            progress = replica_done_line(done, total, time.perf_counter() - start)
            _log(f"{activation!r} replica {r + 1}/{options.replicas} trained in "
                 f"{duration(out['train_seconds'])}{where}: AUC {m['auc']:.4f}, logloss {m['logloss']:.4f}, "
                 f"calibration {m['calibration']:.3f}; {progress}")
        assert labels is not None  # set by the first replica
        rec = analysis.VariantRecords(activation, tuple(records), tuple(r["plan"] for r in replicas),
                                      tuple(val_records) if all(val_records) else (), val_labels,
                                      tuple(stops) if all(stops) else ())
        recorded.append(rec)
        step = rec.selected_step()
        preds = list(rec.final())  # at the selected step (each replica's own with early stopping)
        for replica, p, at in zip(replicas, preds, rec.replica_steps(), strict=True):
            replica["metrics"] = accuracy.accuracy_metrics(labels, p)
            replica["step"] = at
        pd_summary = pairwise_pd(preds)
        row = report.variant_row(activation, replicas, pd_summary)
        variants_out.append({**row, "replica_results": replicas, "stopping": rec.stopping(),
                             "pd_by_prediction_bucket": pd_by_prediction_bucket(preds),
                             "pd_pairs": [{"pair": list(p), "relative_pd": d.relative_pd,
                                           "absolute_pd": d.absolute_pd}
                                          for p, d in zip(pd_summary.pairs, pd_summary.per_pair,
                                                          strict=True)]})
        how = ("each replica's best validation step, median" if rec.early_stopped else
               "best validation AUC" if rec.validation else "last")
        _log(f"{activation!r} at step {step} ({how}): "
             f"relative PD {pd_summary.relative.mean * 100:.4g}% "
             f"({_spread(pd_summary.relative.std, len(pd_summary.pairs))}), "
             f"AUC {row['auc']['mean']:.4f}")
    assert labels is not None, "a study has at least one variant"
    _log(f"bootstrap: {options.bootstrap_draws} draws over examples and replicas, at every evaluation step")
    result = analysis.analyse(recorded, labels, options.baseline or None, options.bootstrap_draws,
                              options.bootstrap_seed)
    analysis.write_dashboards(tb_root, recorded, labels, result, options.sources)
    final = result.final
    distributions = {}
    for v, rec in zip(variants_out, recorded, strict=True):
        s = final.variant(v["variant"])
        distributions[v["variant"]] = plots.pooled_relative_differences(rec.final())
        v.update(relative_pd_ci=s.relative_pd.as_dict(), absolute_pd_ci=s.absolute_pd.as_dict(),
                 auc_ci=s.auc.as_dict(), pd_ratio=s.pd_ratio.as_dict() if s.pd_ratio else None,
                 auc_delta=s.auc_delta.as_dict(), verdict=s.verdict,
                 relative_pd_tail=plots.tail_percentiles(distributions[v["variant"]]),
                 pd_over_time=result.over_time[v["variant"]], selected_step=result.selected[v["variant"]],
                 validation_auc={str(k): a for k, a in result.validation_auc[v["variant"]].items()})
    _log("cost: training ex/s, serving latency of the replica-0 exports, parameters")
    recommended, budget = cost.apply(variants_out, configs, final.baseline, options.max_cost,
                                     final.recommended)
    base_sd = final.variant(final.baseline).log_pd_sd
    statistics = {"baseline": final.baseline, "recommended": recommended, "method": final.method,
                  "draws": final.draws, "seed": final.seed, "confidence": final.confidence,
                  "replicas": options.replicas, "num_examples": final.num_examples,
                  "detectable_pd_ratio": final.detectable_pd_ratio,
                  "baseline_log_pd_sd": None if np.isnan(base_sd) else base_sd,
                  "selection": result.selection, "selected_steps": result.selected,
                  "validation_fraction": recorded_fraction(base, options),
                  "num_validation_examples": int(len(recorded[0].validation_labels))
                  if recorded[0].validation_labels is not None else 0}
    commands = dashboards.tensorboard_commands(output, len(options.activations), options.replicas)
    payload = {
        "title": options.title, "config": loading.to_dict(base),
        "options": dataclasses.asdict(options), "num_eval_examples": int(len(labels)),
        "elapsed_seconds": time.perf_counter() - start, "baseline": final.baseline,
        "recommended": recommended, "cost_budget": budget, "statistics": statistics,
        "variants": variants_out,
        "figures": {"frontier": FRONTIER_PNG, "pd_distribution": DISTRIBUTION_PNG},
        "tensorboard": {"logdir": tb_root, "runs": dashboards.run_count(len(recorded), options.replicas),
                        "commands": commands},
    }
    report.write_json(results_path, payload)
    with open(os.path.join(output, RESULTS_MD), "w", encoding="utf-8") as fh:
        fh.write(report.results_markdown(payload) + cost.cost_markdown(payload))
    plots.frontier_plot(variants_out, os.path.join(output, FRONTIER_PNG), options.title,
                        recommended=recommended or "", baseline=final.baseline)
    plots.distribution_plot(distributions, os.path.join(output, DISTRIBUTION_PNG), options.title)
    best = final.variant(final.recommended)
    _log(f"recommended {final.recommended!r}: relative PD {best.relative_pd.estimate * 100:.4g}% "
         f"[{best.relative_pd.lower * 100:.4g}, {best.relative_pd.upper * 100:.4g}] at AUC "
         f"{best.auc.estimate:.4f} [{best.auc.lower:.4f}, {best.auc.upper:.4f}] ({best.verdict})")
    if budget.get("message"):
        _log(f"budget {options.max_cost:g}x: {budget['message']}")
    _log(f"done in {payload['elapsed_seconds']:.0f}s: {results_path}")
    return payload


def _run_update(base: Experiment, options: StudyOptions, output: str) -> dict[str, Any]:
    """The update source: chains of versions and the churn between them (recsys/study/update.py)."""
    from recsys.study import update

    payload = update.run_update_study(base, options, output, options.windows, options.update_steps,
                                      options.distill_weight, log=_log)
    tb_root = os.path.join(output, dashboards.TB_DIR)
    payload["figures"] = {"frontier": FRONTIER_PNG}
    payload["tensorboard"] = {"logdir": tb_root,
                              "commands": [f"tensorboard --logdir {tb_root} --host 127.0.0.1"]}
    update.write_outputs(payload, output)
    _log(f"done in {payload['elapsed_seconds']:.0f}s: {os.path.join(output, RESULTS_JSON)}")
    return payload


def _early_stopping_warnings(base: Experiment, options: StudyOptions) -> list[str]:
    """Why a study's early stopping could not stop anything (it then trains to train.steps)."""
    t = base.train
    patience = t.early_stopping_patience if options.patience is None else options.patience
    if not patience:
        return []
    if not 0 < t.eval_every < t.steps:
        return [f"early stopping (patience {patience}) with train.eval_every={t.eval_every}: one "
                f"evaluation, at train.steps={t.steps}, so no replica can stop early; set train.eval_every"]
    if t.steps // t.eval_every <= patience:
        return [f"early stopping (patience {patience}) needs more than {patience} evaluations: "
                f"train.steps={t.steps} / train.eval_every={t.eval_every} gives {t.steps // t.eval_every}"]
    return []


def _spread(std: float, pairs: int) -> str:
    """The PD spread over replica pairs, or that one pair has none (not a misleading ``± 0%``)."""
    return f"± {std * 100:.2g}% over {pairs} pairs" if pairs > 1 else "one pair: no spread over pairs"
