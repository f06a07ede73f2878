"""Training throughput (examples/s) of the Criteo-layout synthetic config at global batch 4096.

Single process and a local two-worker MultiWorkerMirroredStrategy cluster, each in "model" mode
(parsed batches cached in memory: the model's speed) and "e2e" mode (GZIP shards read and parsed every
step). Median of timed windows after warm-up; prints a table and writes JSON with ``--json``.
The "distill" mode is "model" with churn-reducing distillation (``train.distill_weight=0.5``, a
teacher of the same architecture): its ex/s against "model" in the same run is the cost of
distillation (JSON ``ratios.single_distill_over_model``, ``two_workers_distill_over_model``).

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

import scaling  # benchmarks/scaling.py, beside this script (the --scaling runs, result and summary)
import tables  # benchmarks/tables.py: the table-size sweep per embedding optimizer (--modes ...,tables)

import recsys.compat  # noqa: F401  (Keras 2 before TensorFlow)
from recsys.launch.placement import DEFAULT_PIN_CPUS, DEFAULT_THREADS

CONFIG = "synthetic_criteo"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the results here")
    p.add_argument("--rows", type=int, default=131072, help="synthetic training rows")
    p.add_argument("--warmup", type=int, default=2, help="untimed windows")
    p.add_argument("--windows", type=int, default=5, help="timed windows")
    p.add_argument("--window_steps", type=int, default=40, help="steps per window")
    p.add_argument("--modes", default="e2e,model,e2e_tfexample,distill,tables",
                   help="comma-separated: model (batches cycled from memory), e2e (the stream, columnar "
                        "shards), e2e_tfexample (the stream from the tf.Example shards: the old path), "
                        "distill (model, with distillation weight 0.5 toward a frozen teacher), "
                        "tables (model-only ex/s at small and big tables per embedding optimizer, and "
                        "their AUC: benchmarks/tables.py)")
    p.add_argument("--repeats", type=int, default=2,
                   help="rounds over the modes, interleaved (a load spike hits every mode alike); the "
                        "windows of all rounds are pooled")
    p.add_argument("--worker_threads", type=int, default=DEFAULT_THREADS,
                   help="two workers: TensorFlow intra-op and inter-op threads per worker (0: TF decides)")
    p.add_argument("--pin", action=argparse.BooleanOptionalAction, default=DEFAULT_PIN_CPUS,
                   help="two workers: worker i on its own slice of the CPUs (as `recsys submit`)")
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
    tables.add_args(p)
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="also measure exact resume: backups on vs off, kill -> training again")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="model", help=argparse.SUPPRESS)
    p.add_argument("--profile_steps", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def run_worker(args: argparse.Namespace) -> None:
    """One measurement in this process (one worker of a cluster when TF_CONFIG is set), through the
    trainer's own step sequence (:func:`recsys.train.trainer.make_chunk_fn`) and input stream."""
    from recsys import config as cfg
    from recsys.train.strategy import make_strategy

    sets = [f"data.spec_dir={args.data_dir}"] + args.set
    if args.mode == "e2e_tfexample":
        sets.append("data.format=tfexample")
    if args.mode == "distill":  # the teacher is built below, as initialised: its cost, not its values
        sets += ["train.distill_from=benchmark-teacher", "train.distill_weight=0.5"]
    exp = cfg.load(CONFIG, sets)
    strategy, role = make_strategy(exp.determinism.collective)  # before any other TF op
    from recsys.compat import tf
    from recsys.train.determinism import apply_determinism
    from recsys.train.task import RankingTask
    from recsys.train.trainer import check_config, make_chunk_fn

    task = RankingTask(exp, check_config(exp))
    apply_determinism(exp.determinism)
    with strategy.scope():
        model = task.build_model()
        optimizer = task.build_optimizer(model)
        if args.mode == "distill":
            task.build_teacher(exp.model, None)
        task.build_objective()
    # model, distill: the stream's first batches cycled from memory (the model's speed); e2e: the stream.
    cycle = 8 if args.mode in ("model", "distill") else 0
    iterator = iter(task.build_inputs(strategy, 0, cycle_first=cycle))
    run_chunk = make_chunk_fn(strategy, task, model, optimizer)
    per_call = max(1, exp.train.steps_per_execution)
    calls = max(1, args.window_steps // per_call)
    times: list[float] = []
    cpu = 0.0  # this process's CPU seconds in the timed windows (all its threads: input, compute, gRPC)
    for window in range(args.warmup + args.windows):
        if window == args.warmup:
            cpu = -time.process_time()
        start = time.perf_counter()
        for _ in range(calls):
            out = run_chunk(iterator, tf.constant(per_call, tf.int64))
        float(strategy.experimental_local_results(out)[0]["loss"])  # wait for the steps to finish
        if window >= args.warmup:
            times.append(time.perf_counter() - start)
    cpu += time.process_time()
    rates = [exp.data.batch_size * calls * per_call / t for t in times]
    result = {"rates": rates, "is_chief": role.is_chief, "workers": role.num_workers,
              "format": "columnar" if task.stream_spec(1, 0, 1).columnar else "tfexample",
              "step_seconds": statistics.median(times) / (calls * per_call),
              "cpu_step_seconds": cpu / (args.windows * calls * per_call)}
    if args.profile_steps and role.num_workers > 1:
        result["compute_step_seconds"] = _local_compute(exp, task, role, per_call, args.profile_steps)
    print("RESULT " + json.dumps(result), flush=True)


def input_profile(args: argparse.Namespace) -> None:
    """CPU time per row of the input stream's stages, one after the other in this process (no model):
    where the input's share of the two cores goes. Prints RESULT with {stage: {cpu_us_per_row,
    rows_per_s}}."""
    from recsys import config as cfg
    from recsys.compat import tf
    from recsys.data import stream as st
    from recsys.train.trainer import check_config

    exp = cfg.load(CONFIG, [f"data.spec_dir={args.data_dir}"] + args.set)
    spec = check_config(exp)
    batch, block = exp.data.batch_size, exp.data.shuffle_buffer

    options = tf.data.Options()
    options.autotune.enabled = False  # every stage as the train stream runs it (stream.train_stream)

    def measure(ds: tf.data.Dataset, rows_per_element: int, elements: int) -> dict[str, float]:
        it = iter(ds.with_options(options).repeat())
        for _ in range(3):
            next(it)
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(elements):
            next(it)
        rows = rows_per_element * elements
        return {"cpu_us_per_row": 1e6 * (time.process_time() - cpu) / rows,
                "rows_per_s": rows / (time.perf_counter() - wall)}

    n = 60  # global batches per stage
    out: dict[str, dict[str, float]] = {}
    for fmt in ("tfexample", "columnar"):
        col = fmt == "columnar"
        files = st.worker_files(spec, st.StreamSpec(global_batch=batch, columnar=col))
        compression = spec.data.columnar_compression if col else spec.data.compression
        rows = spec.data.columnar_chunk_rows if col else st.CHUNK_ROWS
        raw = tf.data.TFRecordDataset(files, compression_type=compression or None)
        out[f"{fmt}_read"] = measure(raw if col else raw.batch(rows), rows, n * batch // rows)
        chunks = st._columnar_chunks(spec, files) if col else st._example_chunks(spec, files)
        out[f"{fmt}_read_parse"] = measure(chunks, rows, n * batch // rows)
        for name, shuffle in (("stream_unshuffled", 0), ("stream", block)):
            stream = st.StreamSpec(global_batch=batch, data_seed=1, shuffle_block=shuffle, columnar=col)
            out[f"{fmt}_{name}"] = measure(st.train_stream(spec, stream), batch, n)
        print(f"{fmt}: " + ", ".join(f"{k[len(fmt) + 1:]} {v['cpu_us_per_row']:.2f} us/row"
                                     for k, v in out.items() if k.startswith(fmt)), file=sys.stderr)
    print("RESULT " + json.dumps(out), flush=True)


def _local_compute(exp, task, role, per_call: int, steps: int) -> float:
    """Seconds per step of this worker's share of a step without any collective: the same model and
    optimizer on the worker's batch (global batch / workers) under the default strategy, run while
    the other workers do the same. Step time minus this is the all-reduce and its waiting."""
    import dataclasses

    from recsys.compat import tf
    from recsys.train.task import RankingTask
    from recsys.train.trainer import make_chunk_fn

    local_exp = dataclasses.replace(exp, data=dataclasses.replace(
        exp.data, batch_size=exp.data.batch_size // role.num_workers))
    local = RankingTask(local_exp, task.spec)
    default = tf.distribute.get_strategy()
    model = local.build_model()
    optimizer = local.build_optimizer(model)
    if task.teacher is not None:  # the distill mode: the teacher's forward pass is compute too
        local.build_teacher(exp.model, None)
    local.build_objective()
    run_chunk = make_chunk_fn(default, local, model, optimizer)
    it = iter(local.build_inputs(default, 0, cycle_first=8))
    float(run_chunk(it, tf.constant(per_call, tf.int64))["loss"])  # trace and warm up
    calls = max(1, steps // per_call)
    start = time.perf_counter()
    for _ in range(calls):
        out = run_chunk(it, tf.constant(per_call, tf.int64))
    float(out["loss"])
    return (time.perf_counter() - start) / (calls * per_call)


def _ensure_data(args: argparse.Namespace) -> str:
    """The synthetic Criteo-layout data set (written once), with its columnar copy."""
    from pipelines import columnar, feature_spec
    from pipelines.synthetic_spec import SyntheticLayout, write_synthetic

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="recsys-bench-train-")
    if not os.path.exists(os.path.join(data_dir, "feature_spec.json")):
        t = time.perf_counter()
        write_synthetic(data_dir, num_train=args.rows, num_eval=4096,
                        layout=SyntheticLayout(cardinality=1000), num_train_shards=8)
        print(f"wrote {args.rows} synthetic rows to {data_dir} in {time.perf_counter() - t:.0f}s", flush=True)
    if not feature_spec.load(data_dir).data.columnar_pattern:  # what `recsys preprocess` writes beside
        columnar.add_columnar(data_dir)
    return data_dir


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        input_profile(args) if args.mode == "input_profile" else run_worker(args)
        return
    from recsys.launch.cluster import run_local_cluster

    data_dir = _ensure_data(args)
    base = [sys.executable, os.path.abspath(__file__), "--worker", "--data_dir", data_dir, "--warmup",
            str(args.warmup), "--windows", str(args.windows), "--window_steps", str(args.window_steps),
            ] + [f"--set={s}" for s in args.set]  # fmt: skip
    rates: dict[str, list[float]] = {}
    steps: dict[str, list[tuple[float, float]]] = {}  # two workers: (step, compute) seconds per worker
    cpus: dict[str, list[list[float]]] = {}  # two workers: CPU seconds per step, [chief, other] per run
    modes = [m for m in args.modes.split(",") if m and m != "tables"]
    for _ in range(args.repeats):
        for mode in modes:
            cmd = base + ["--mode", mode]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
            if proc.returncode:
                raise SystemExit(f"single-process {mode} run failed:\n{proc.stderr[-3000:]}")
            rates.setdefault(f"single_{mode}", []).extend(scaling.result(proc.stdout)["rates"])
            print(f"single    {mode:13s}: {scaling.summary(rates[f'single_{mode}'])}", flush=True)
            if args.skip_two_workers or mode == "e2e_tfexample":
                continue
            workers = run_local_cluster(cmd + ["--profile_steps", "100"], num_workers=2, timeout=1800,
                                        pin_cpus=args.pin, threads_per_worker=args.worker_threads)
            for w in workers:
                if w.returncode:
                    raise SystemExit(f"two-worker {mode} run failed:\n{w.stderr[-3000:]}")
            per_worker = [scaling.result(w.stdout) for w in workers]
            chief = next(r for r in per_worker if r["is_chief"])
            rates.setdefault(f"two_workers_{mode}", []).extend(chief["rates"])
            steps.setdefault(mode, []).extend(
                (r["step_seconds"], r["compute_step_seconds"]) for r in per_worker)
            cpus.setdefault(mode, []).append(
                [r["cpu_step_seconds"] for r in sorted(per_worker, key=lambda r: not r["is_chief"])])
            print(f"2 workers {mode:13s}: {scaling.summary(rates[f'two_workers_{mode}'])}", flush=True)
    results = {name: scaling.summary(r) for name, r in rates.items()}
    profile = {}
    for mode, pairs in steps.items():
        step = statistics.median(p[0] for p in pairs)
        compute = statistics.median(p[1] for p in pairs)
        profile[mode] = {"step_ms": 1e3 * step, "compute_ms": 1e3 * compute,
                         "allreduce_and_wait_ms": 1e3 * max(0.0, step - compute),
                         "allreduce_share": max(0.0, step - compute) / step,
                         # CPU ms per step of the chief and of the other worker (each pinned to its
                         # own CPUs: on a busy box a worker's step cannot take less than its CPU)
                         "cpu_ms_chief": 1e3 * statistics.median(c[0] for c in cpus[mode]),
                         "cpu_ms_other": 1e3 * statistics.median(c[1] for c in cpus[mode])}  # fmt: skip

    input_costs: dict = {}
    if modes:  # not for the table sweep alone (--modes tables)
        proc = subprocess.run(base + ["--mode", "input_profile"], capture_output=True, text=True,
                              timeout=1800)
        if proc.returncode:
            raise SystemExit(f"input profile failed:\n{proc.stderr[-3000:]}")
        input_costs = scaling.result(proc.stdout)
    out: dict = {
        "input_profile": input_costs,
        "config": CONFIG,
        "global_batch": 4096,
        "overrides": args.set,
        "cpu_count": os.cpu_count(),
        "two_worker_setup": {"pin_cpus": args.pin, "threads_per_worker": args.worker_threads or "TF default",
                             "collective": "AUTO (RING over gRPC on 127.0.0.1)", "profile": profile},
        "details": results,
    }  # fmt: skip
    first = modes[0] if modes else ""
    if modes:
        out["single_ex_per_s"] = results[f"single_{first}"]["median"]
    ratios = {}
    med = {k: v["median"] for k, v in results.items()}
    if "single_e2e" in med and "single_model" in med:
        ratios["single_e2e_over_model"] = med["single_e2e"] / med["single_model"]
    if "single_e2e_tfexample" in med and "single_model" in med:
        ratios["single_e2e_tfexample_over_model"] = med["single_e2e_tfexample"] / med["single_model"]
    for where in ("single", "two_workers"):
        if f"{where}_distill" in med and f"{where}_model" in med:
            ratios[f"{where}_distill_over_model"] = med[f"{where}_distill"] / med[f"{where}_model"]
    for mode in ("model", "e2e"):
        if f"two_workers_{mode}" in med:
            ratios[f"two_workers_over_single_{mode}"] = med[f"two_workers_{mode}"] / med[f"single_{mode}"]
    out["ratios"] = ratios
    if not args.skip_two_workers and modes:
        out["two_workers_ex_per_s"] = results[f"two_workers_{first}"]["median"]
        out["two_over_single"] = out["two_workers_ex_per_s"] / out["single_ex_per_s"]
    if modes:
        print(f"\n{'run':<26}{'median ex/s':>14}{'min':>12}{'max':>12}")
    for name, r in results.items():
        print(f"{name:<26}{r['median']:>14,.0f}{r['min']:>12,.0f}{r['max']:>12,.0f}")
    print()
    targets = {"single_e2e_over_model": 0.85, "two_workers_over_single_model": 0.7,
               "two_workers_over_single_e2e": 0.7}
    for name, value in ratios.items():
        target = f"  (target >= {targets[name]})" if name in targets else ""
        print(f"{name:<34}{value:>8.3f}{target}")
    model_us = 1e6 / med["single_model"] if "single_model" in med else None
    if input_costs:
        print(f"\ninput stages, CPU us per row (one process, no model; the model costs "
              f"{model_us * 2 if model_us else float('nan'):.2f} us per row on the 2 cores):")
    for name, v in input_costs.items():
        print(f"  {name:<32}{v['cpu_us_per_row']:>8.2f}{v['rows_per_s']:>14,.0f} rows/s")
    for mode, p in profile.items():
        print(f"two workers, {mode}: step {p['step_ms']:.1f} ms = compute {p['compute_ms']:.1f} ms + "
              f"all-reduce and waiting {p['allreduce_and_wait_ms']:.1f} ms ({p['allreduce_share']:.0%}); "
              f"CPU per step: chief {p['cpu_ms_chief']:.1f} ms, other worker {p['cpu_ms_other']:.1f} ms")
    if "tables" in args.modes.split(","):  # ex/s at small and big tables per embedding optimizer
        out.update(tables.run_tables(args, data_dir, base, CONFIG))
        tables.print_tables(out)
    if args.scaling:
        out.update(scaling.run_scaling(args, data_dir, base, CONFIG))
        scaling.print_scaling(out)
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
