"""Training throughput (examples/s) of the Criteo-layout synthetic config at global batch 4096.

Single process and a local two-worker MultiWorkerMirroredStrategy cluster, each in "model" mode
(parsed batches cached in memory: the model's speed) and "e2e" mode (GZIP shards read and parsed every
step). Median of timed windows after warm-up; prints a table and writes JSON with ``--json``.

    .venv/bin/python benchmarks/train.py --json out/bench/train.json

On a 2-core box the two workers share the cores, so the two-worker figure measures the overhead of
the collectives, not a speed-up.
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


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return
    from recsys.data.synthetic import SyntheticLayout, write_synthetic
    from recsys.train.local_cluster import run_local_cluster

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
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)
    print(json.dumps({k: out[k] for k in ("single_ex_per_s", "two_workers_ex_per_s") if k in out}))


if __name__ == "__main__":
    main()
