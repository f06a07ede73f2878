"""The scaling part of benchmarks/train.py (``--scaling``): model-only ex/s against the rows of the fused
table and the global batch, and SmeLU against ReLU in interleaved runs. Each run is a subprocess of
train.py in ``--mode model``; this module only plans them and tabulates their rates."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess


def result(stdout: str) -> dict:
    """The ``RESULT {json}`` line a train.py worker prints last."""
    line = [x for x in stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def summary(rates: list[float]) -> dict:
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates), "n": len(rates)}


def hashed_spec(data_dir: str, rows: int) -> tuple[str, int]:
    """A spec over the same shards with every categorical feature hashed to ``rows / n`` buckets."""
    import dataclasses

    from pipelines import feature_spec

    spec = feature_spec.load(data_dir)
    cats = [f for f in spec.features if f.kind != "numeric"]
    buckets = max(1, rows // len(cats))
    feats = tuple(
        f if f.kind == "numeric" else dataclasses.replace(
            f, encoding="hash", hash_buckets=buckets, vocabulary_file="", vocabulary_size=0,
            num_oov_buckets=0)
        for f in spec.features
    )  # fmt: skip
    data = dataclasses.replace(spec.data, train_pattern=spec.path(spec.data.train_pattern),
                               eval_pattern=spec.path(spec.data.eval_pattern),
                               columnar_pattern=spec.path(spec.data.columnar_pattern)
                               if spec.data.columnar_pattern else "")  # fmt: skip
    out = os.path.join(data_dir, f"scaling-rows-{rows}")
    dataclasses.replace(spec, features=feats, data=data).save(out)
    return out, buckets * len(cats)


def _model_run(base: list[str], spec_dir: str, batch: int, examples: int, sets: list[str]) -> list[float]:
    """Rates of one single-process model-only run (cached batches) with its own windows."""
    steps = max(20, examples // batch // 20 * 20)  # whole steps_per_execution (20) groups
    cmd = list(base) + ["--mode", "model", "--data_dir", spec_dir, "--window_steps", str(steps),
                        f"--set=data.batch_size={batch}"] + [f"--set={s}" for s in sets]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode:
        raise SystemExit(f"scaling run {sets} batch {batch} failed:\n{proc.stderr[-3000:]}")
    return result(proc.stdout)["rates"]


def run_scaling(args: argparse.Namespace, data_dir: str, base: list[str], config: str) -> dict:
    """Model-only ex/s against table rows and global batch, and SmeLU against ReLU (item 4, 5)."""
    from pipelines import feature_spec
    from recsys import config as cfg
    from recsys.planning import plan_experiment

    rows_out, batch_out, details = [], [], {}
    for rows in (int(float(x)) for x in args.scaling_rows.split(",") if x):
        spec_dir, actual = hashed_spec(data_dir, rows)
        for opt in (x for x in args.scaling_optimizers.split(",") if x):
            sets = [f"train.optimizer={opt}"]
            plan = plan_experiment(cfg.load(config, [f"data.spec_dir={spec_dir}", *args.set, *sets]),
                                   feature_spec.load(spec_dir))  # fmt: skip
            r = summary(_model_run(base, spec_dir, 4096, args.scaling_examples, sets))
            details[f"model_rows_{rows}_{opt}"] = r
            rows_out.append({"rows": actual, "requested_rows": rows, "optimizer": opt,
                             "gradient": plan.tables[0].gradient, "weight_bytes": plan.tables[0].weight_bytes,
                             "ex_per_s": r["median"], **r})  # fmt: skip
            print(f"rows {actual:>10,} {opt}: {r}", flush=True)
    rates: dict[str, list[float]] = {"relu": [], "smelu": []}
    for _ in range(args.activation_pairs):  # interleaved, so machine load hits both alike
        for act in rates:
            rates[act] += _model_run(base, data_dir, 4096, args.scaling_examples, [f"model.activation={act}"])
    relu, smelu = summary(rates["relu"]), summary(rates["smelu"])
    details.update(model_relu=relu, model_smelu=smelu)
    for batch in (int(x) for x in args.scaling_batches.split(",") if x):
        r = relu if batch == 4096 else summary(_model_run(base, data_dir, batch, args.scaling_examples, []))
        details[f"model_batch_{batch}"] = r
        batch_out.append({"global_batch": batch, "ex_per_s": r["median"], **r})
        print(f"batch {batch:>6}: {r}", flush=True)
    print(f"relu: {relu}\nsmelu: {smelu}", flush=True)
    return {
        "scaling": {"rows": rows_out, "batch": batch_out, "table_rows_batch": 4096,
                    "examples_per_window": args.scaling_examples},
        "activation_cost": {
            "relu_ex_per_s": relu["median"], "smelu_ex_per_s": smelu["median"],
            "smelu_over_relu_ex_per_s": smelu["median"] / relu["median"],
            "smelu_step_time_over_relu": relu["median"] / smelu["median"], "target_step_time_ratio": 1.1,
        },
        "scaling_details": details,
    }  # fmt: skip


def print_scaling(out: dict) -> None:
    """The scaling and activation tables (model only, single process)."""
    s, a = out["scaling"], out["activation_cost"]
    print(f"\nmodel-only ex/s against fused-table rows (global batch {s['table_rows_batch']}):")
    head = f"{'rows':>12}{'optimizer':>10}{'grad':>8}{'weights MiB':>13}"
    print(head + f"{'median ex/s':>14}{'min':>12}{'max':>12}")
    for r in s["rows"]:
        print(f"{r['rows']:>12,}{r['optimizer']:>10}{r['gradient']:>8}{r['weight_bytes'] / 2**20:>13.1f}"
              f"{r['median']:>14,.0f}{r['min']:>12,.0f}{r['max']:>12,.0f}")  # fmt: skip
    print("\nmodel-only ex/s against global batch:")
    print(f"{'batch':>12}{'median ex/s':>14}{'min':>12}{'max':>12}")
    for r in s["batch"]:
        print(f"{r['global_batch']:>12,}{r['median']:>14,.0f}{r['min']:>12,.0f}{r['max']:>12,.0f}")
    print(f"\nactivation, model only: relu {a['relu_ex_per_s']:,.0f} ex/s, smelu "
          f"{a['smelu_ex_per_s']:,.0f} ex/s; SmeLU step time / ReLU = "
          f"{a['smelu_step_time_over_relu']:.3f} (target <= 1.1)")
