"""What each study variant costs beside its PD and accuracy: training throughput, serving latency and
parameters, relative to the baseline, and the recommendation under a cost budget (``--max_cost``).

- Training: examples/s of each replica's own timed run (steps trained × global batch / train seconds), mean
  over the variant's replicas. The ratio is baseline ex/s / variant ex/s (2.0: twice the time).
- Serving: the replica-0 export loaded in process (``tf.saved_model.load``), its ``serving_default``
  called on eval rows at batch 1 and 256, the median of :data:`CALLS` timed calls after warm-up.
  Only when the study exports (``--export_dir``); otherwise it is recorded as not measured.
- Parameters: the trainable parameters of :func:`recsys.planning.plan_experiment` (every table and
  dense layer, every ensemble tower; learnable activation parameters aside).
- Cost: the largest of the training-time and latency ratios vs the baseline (1.0 for the baseline).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from recsys.config.schema import Experiment

BATCHES = (1, 256)
CALLS = 15  # timed calls per batch size (after WARMUP): the median of them is recorded
WARMUP = 3


def examples_per_second(replicas: list[dict[str, Any]], steps: int, batch_size: int) -> float:
    """Mean over replicas of the steps it trained × global batch / that replica's train seconds.

    ``steps`` is the maximum; an early-stopped replica trained only to its ``stopped_step``."""
    rates = [_trained_steps(r, steps) * batch_size / r["train_seconds"] for r in replicas
             if r["train_seconds"] > 0]
    return float(np.mean(rates)) if rates else float("nan")


def _trained_steps(replica: dict[str, Any], steps: int) -> int:
    stop = replica.get("early_stopping") or {}
    return int(stop.get("stopped_step", steps))


def parameter_count(config: Experiment) -> int | None:
    """Trainable parameters of ``config``'s model on its feature spec (from the plan: no TensorFlow);
    None when the plan cannot be made (e.g. an optimizer the planner does not know)."""
    from pipelines import feature_spec
    from recsys.planning import plan_experiment

    try:
        plan = plan_experiment(config, feature_spec.load(config.data.spec_dir))
    except (ValueError, FileNotFoundError):
        return None
    return int(sum(t.rows * t.dim for t in plan.tables) + plan.dense.rows)


def latency_inputs(spec_dir: str, batches: tuple[int, ...] = BATCHES) -> dict[int, dict[str, Any]]:
    """``serving_default``'s raw inputs per batch size: eval rows of ``spec_dir``, repeated when the split
    has fewer than the batch."""
    from pipelines import feature_spec
    from recsys.compat import tf
    from recsys.data import make_dataset
    from recsys.export import raw_batch

    spec = feature_spec.load(spec_dir)
    features, _ = next(iter(make_dataset(spec, "eval", max(batches))))
    raw = raw_batch(features, spec)
    return {b: {k: tf.constant(np.resize(v, (b, *v.shape[1:]))) for k, v in raw.items()} for b in batches}


def serving_latency(export_path: str, spec_dir: str, batches: tuple[int, ...] = BATCHES,
                    calls: int = CALLS) -> dict[str, float]:
    """Median seconds of one ``serving_default`` call of the export at each batch size, in process."""
    from recsys.compat import tf

    fn = tf.saved_model.load(export_path).signatures["serving_default"]
    out = {}
    for b, inputs in latency_inputs(spec_dir, batches).items():
        for _ in range(WARMUP):
            fn(**inputs)
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            fn(**inputs)["probability"].numpy()
            times.append(time.perf_counter() - start)
        out[str(b)] = statistics.median(times)
    return out


def measure(variant: dict[str, Any], config: Experiment) -> dict[str, Any]:
    """The absolute costs of one variant (its ``replica_results``; ``config``: its replica 0's)."""
    replicas = variant["replica_results"]
    export = replicas[0].get("export_path")
    return {"train_examples_per_second": examples_per_second(replicas, config.train.steps,
                                                             config.data.batch_size),
            "parameters": parameter_count(config),
            "latency_seconds": serving_latency(export, config.data.spec_dir) if export else None}


def relative(costs: dict[str, dict[str, Any]], baseline: str) -> dict[str, dict[str, Any]]:
    """Each variant's costs with its ratios vs the baseline and its cost (the largest time ratio)."""
    base = costs[baseline]
    out = {}
    for name, c in costs.items():
        train_ratio = base["train_examples_per_second"] / c["train_examples_per_second"]
        lat, base_lat = c["latency_seconds"], base["latency_seconds"]
        latency_ratio = {b: lat[b] / base_lat[b] for b in lat} if lat and base_lat else None
        ratios = [train_ratio, *(latency_ratio or {}).values()]
        out[name] = {**c, "train_time_ratio": train_ratio, "latency_ratio": latency_ratio,
                     "parameter_ratio": c["parameters"] / base["parameters"]
                     if c["parameters"] and base["parameters"] else None,
                     "cost": 1.0 if name == baseline else max(ratios)}
    return out


def recommend_within(rows: list[dict[str, Any]], baseline: str, max_cost: float) -> str | None:
    """The study's rule (lowest relative PD among the variants whose AUC is not significantly below the
    baseline's) among the variants whose cost is at most ``max_cost``; None when no variant is."""
    eligible = [r for r in rows if r["cost"]["cost"] <= max_cost
                and (r["variant"] == baseline or not (r.get("auc_delta") or {}).get("ci_upper", 0) < 0)]
    if not eligible:
        return None
    return min(eligible, key=lambda r: r["relative_pd_ci"]["estimate"])["variant"]


def apply(rows: list[dict[str, Any]], configs: dict[str, Experiment], baseline: str,
          max_cost: float, recommended: str) -> tuple[str | None, dict[str, Any]]:
    """Record ``cost`` on every row; the recommendation (under ``max_cost`` when > 0) and the budget
    record for results.json."""
    costs = relative({r["variant"]: measure(r, configs[r["variant"]]) for r in rows}, baseline)
    for r in rows:
        r["cost"] = costs[r["variant"]]
    measured = all(c["latency_seconds"] for c in costs.values())
    budget: dict[str, Any] = {"max_cost": max_cost or None, "latency_measured": measured,
                              "definition": "the largest of the training-time and serving-latency (batch 1, "
                                            "256) ratios vs the baseline" if measured else
                                            "the training-time ratio vs the baseline (no export: serving "
                                            "latency not measured; pass --export_dir)"}
    if max_cost <= 0:
        return recommended, budget
    pick = recommend_within(rows, baseline, max_cost)
    budget["unconstrained_recommendation"] = recommended
    budget["message"] = (f"recommended `{pick}` among the variants costing at most {max_cost:g}×"
                         if pick else f"no variant costs at most {max_cost:g}× `{baseline}` (the cheapest "
                         f"costs {min(c['cost'] for c in costs.values()):.2f}×): nothing is recommended")
    return pick, budget


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def cost_markdown(payload: dict[str, Any]) -> str:
    """The cost table of results.md: ex/s, latencies and parameters, each with its ratio vs the baseline."""
    rows = [r for r in payload.get("variants", []) if r.get("cost")]
    if not rows:
        return ""
    budget = payload.get("cost_budget") or {}
    lines = ["", "#### Cost vs the baseline", "",
             "| variant | train ex/s (time ×) | latency b=1 (×) | latency b=256 (×) | parameters (×) "
             "| cost |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        c = r["cost"]
        lat, ratio = c.get("latency_seconds"), c.get("latency_ratio") or {}
        cells = [f"{_ms(lat[b])} ({ratio[b]:.2f}×)" if lat and b in ratio else "not measured"
                 for b in ("1", "256")]
        params = f"{c['parameters']:,} ({c['parameter_ratio']:.2f}×)" if c.get("parameter_ratio") else "n/a"
        rate = f"{c['train_examples_per_second']:,.0f} ({c['train_time_ratio']:.2f}×)"
        lines.append(f"| `{r['variant']}` | {rate} | "
                     f"{cells[0]} | {cells[1]} | {params} | "
                     f"{c['cost']:.2f} |")
    lines += ["", f"Cost: {budget.get('definition', '')}. Training time from each replica's own timed run "
              "(mean over replicas); latency: the replica-0 export's serving_default in process, median of "
              f"{CALLS} calls."]
    if budget.get("message"):
        lines += ["", f"**Budget {budget['max_cost']:g}×:** {budget['message']}."]
    return "\n".join(lines) + "\n"
