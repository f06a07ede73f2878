"""Training throughput (examples/s) of the Criteo-layout synthetic config at global batch 4096.

Single process and a local two-worker MultiWorkerMirroredStrategy cluster, each in "model" mode
(parsed batches cached in memory: the model's speed) and "e2e" mode (GZIP shards read and parsed every
step). Median of timed windows after warm-up; prints a table and writes JSON with ``--json``.

    .venv/bin/python benchmarks/train.py --json out/bench/train.json

On a 2-core box the two workers share the cores, so the two-worker figure measures the overhead of
the collectives, not a speed-up.

``--scaling`` (on by default; ``--no-scaling`` skips it) adds model-only, single-process runs: ex/s
against the rows of the fused table (every categorical feature hashed, Adam and Adagrad), against the
global batch, and SmeLU against ReLU in interleaved runs (JSON: ``scaling``, ``activation_cost``,
``scaling_details``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import recsys.compat  # noqa: F401  (Keras 2 before TensorFlow)

CONFIG = "synthetic_criteo"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the results here")
    p.add_argument("--rows", type=int, default=131072, help="synthetic training rows")
    p.add_argument("--warmup", type=int, default=2, help="untimed windows")
    p.add_argument("--windows", type=int, default=5, help="timed windows")
    p.add_argument("--window_steps", type=int, default=40, help="steps per window")
    p.add_argument("--modes", default="e2e,model", help="comma-separated: model, e2e")
    p.add_argument("--skip_two_workers", action="store_true")
    p.add_argument("--set", action="append", default=[], help="config override key=value")
    p.add_argument("--data_dir", help="reuse/write the synthetic data here")
    p.add_argument("--scaling", action=argparse.BooleanOptionalAction, default=True,
                   help="model-only ex/s against table rows and global batch, and SmeLU against ReLU")
    p.add_argument("--scaling_rows", default="10000,100000,1000000",
                   help="rows of the fused table (every categorical feature hashed to rows/26 buckets)")
    p.add_argument("--scaling_optimizers", default="adam,adagrad",
                   help="optimizers of the rows sweep (Adam's sparse update still touches every row)")
    p.add_argument("--scaling_batches", default="1024,4096,16384",
                   help="global batch sizes (4096 comes from the interleaved ReLU runs)")
    p.add_argument("--scaling_examples", type=int, default=81920,
                   help="examples per timed window of a scaling run (steps = this / batch)")
    p.add_argument("--activation_pairs", type=int, default=2,
                   help="interleaved ReLU, SmeLU run pairs for the activation cost ratio")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="also measure exact resume: backups on vs off, kill -> training again")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="model", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def run_worker(args: argparse.Namespace) -> None:
    """One measurement in this process (one worker of a cluster when TF_CONFIG is set)."""
    from recsys.train.strategy import make_strategy

    strategy, role = make_strategy("AUTO")  # before any other TF op
    from recsys import config as cfg
    from recsys.compat import keras
    from recsys.data import make_dataset
    from recsys.models import RankingModel
    from recsys.train.trainer import check_config, make_optimizer

    exp = cfg.load(CONFIG, [f"data.spec_dir={args.data_dir}"] + args.set)
    spec = check_config(exp)
    keras.utils.set_random_seed(exp.determinism.seed)
    ds = make_dataset(
        spec,
        "train",
        exp.data.batch_size,
        training=True,
        shuffle_buffer=exp.data.shuffle_buffer if args.mode == "e2e" else 0,
        cache=args.mode == "model",
        num_workers=role.num_workers,
    )
    with strategy.scope():
        model = RankingModel(
            spec,
            exp.model,
            train_metrics=exp.train.train_metrics,
            dense_grad_max_elements=exp.train.dense_grad_max_elements,
        )
        model.build_from_spec()
        model.compile(optimizer=make_optimizer(exp.train), steps_per_execution=exp.train.steps_per_execution)

    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(
        ds,
        epochs=args.warmup + args.windows,
        steps_per_epoch=args.window_steps,
        verbose=0,
        callbacks=[Timer()],
    )
    rates = [exp.data.batch_size * args.window_steps / t for t in times[args.warmup :]]
    print(
        "RESULT " + json.dumps({"rates": rates, "is_chief": role.is_chief, "workers": role.num_workers}),
        flush=True,
    )


def _result(stdout: str) -> dict:
    line = [x for x in stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def _summary(rates: list[float]) -> dict:
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
                               eval_pattern=spec.path(spec.data.eval_pattern))  # fmt: skip
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
    return _result(proc.stdout)["rates"]


def run_scaling(args: argparse.Namespace, data_dir: str, base: list[str]) -> dict:
    """Model-only ex/s against table rows and global batch, and SmeLU against ReLU (item 4, 5)."""
    from pipelines import feature_spec
    from recsys import config as cfg
    from recsys.planning import plan_experiment

    rows_out, batch_out, details = [], [], {}
    for rows in (int(float(x)) for x in args.scaling_rows.split(",") if x):
        spec_dir, actual = hashed_spec(data_dir, rows)
        for opt in (x for x in args.scaling_optimizers.split(",") if x):
            sets = [f"train.optimizer={opt}"]
            plan = plan_experiment(cfg.load(CONFIG, [f"data.spec_dir={spec_dir}", *args.set, *sets]),
                                   feature_spec.load(spec_dir))  # fmt: skip
            r = _summary(_model_run(base, spec_dir, 4096, args.scaling_examples, sets))
            details[f"model_rows_{rows}_{opt}"] = r
            rows_out.append({"rows": actual, "requested_rows": rows, "optimizer": opt,
                             "gradient": plan.tables[0].gradient, "weight_bytes": plan.tables[0].weight_bytes,
                             "ex_per_s": r["median"], **r})  # fmt: skip
            print(f"rows {actual:>10,} {opt}: {r}", flush=True)
    rates: dict[str, list[float]] = {"relu": [], "smelu": []}
    for _ in range(args.activation_pairs):  # interleaved, so machine load hits both alike
        for act in rates:
            rates[act] += _model_run(base, data_dir, 4096, args.scaling_examples, [f"model.activation={act}"])
    relu, smelu = _summary(rates["relu"]), _summary(rates["smelu"])
    details.update(model_relu=relu, model_smelu=smelu)
    for batch in (int(x) for x in args.scaling_batches.split(",") if x):
        r = relu if batch == 4096 else _summary(_model_run(base, data_dir, batch, args.scaling_examples, []))
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


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return
    from recsys.data.synthetic import SyntheticLayout, write_synthetic
    from recsys.launch.cluster import run_local_cluster

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="recsys-bench-train-")
    if not os.path.exists(os.path.join(data_dir, "feature_spec.json")):
        t = time.perf_counter()
        write_synthetic(
            data_dir,
            num_train=args.rows,
            num_eval=4096,
            layout=SyntheticLayout(cardinality=1000),
            num_train_shards=8,
        )
        print(f"wrote {args.rows} synthetic rows to {data_dir} in {time.perf_counter() - t:.0f}s", flush=True)
    base = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        "--data_dir",
        data_dir,
        "--warmup",
        str(args.warmup),
        "--windows",
        str(args.windows),
        "--window_steps",
        str(args.window_steps),
    ] + [f"--set={s}" for s in args.set]
    results: dict = {}
    for mode in args.modes.split(","):
        cmd = base + ["--mode", mode]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if proc.returncode:
            raise SystemExit(f"single-process {mode} run failed:\n{proc.stderr[-3000:]}")
        results[f"single_{mode}"] = _summary(_result(proc.stdout)["rates"])
        print(f"single  {mode:5s}: {results[f'single_{mode}']}", flush=True)
        if args.skip_two_workers:
            continue
        workers = run_local_cluster(cmd, num_workers=2, timeout=1800)
        for w in workers:
            if w.returncode:
                raise SystemExit(f"two-worker {mode} run failed:\n{w.stderr[-3000:]}")
        chief = next(_result(w.stdout) for w in workers if _result(w.stdout)["is_chief"])
        results[f"two_workers_{mode}"] = _summary(chief["rates"])
        print(f"2 workers {mode:5s}: {results[f'two_workers_{mode}']}", flush=True)

    out = {
        "config": CONFIG,
        "global_batch": 4096,
        "overrides": args.set,
        "cpu_count": os.cpu_count(),
        "details": results,
    }
    first = args.modes.split(",")[0]
    out["single_ex_per_s"] = results[f"single_{first}"]["median"]
    if not args.skip_two_workers:
        out["two_workers_ex_per_s"] = results[f"two_workers_{first}"]["median"]
        out["two_over_single"] = out["two_workers_ex_per_s"] / out["single_ex_per_s"]
    print()
    print(f"{'run':<22}{'median ex/s':>14}{'min':>12}{'max':>12}")
    for name, r in results.items():
        print(f"{name:<22}{r['median']:>14,.0f}{r['min']:>12,.0f}{r['max']:>12,.0f}")
    if args.scaling:
        out.update(run_scaling(args, data_dir, base))
        print_scaling(out)
    if args.resume:  # backups on vs off, and kill -> training again (benchmarks/resume.py)
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import resume

        out["resume"] = resume.measure(data_dir, kill_workers="1" if args.skip_two_workers else "1,2")
        resume.print_resume(out["resume"])
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)
    print(json.dumps({k: out[k] for k in ("single_ex_per_s", "two_workers_ex_per_s") if k in out}))


if __name__ == "__main__":
    main()
