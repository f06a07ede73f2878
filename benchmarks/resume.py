"""What exact resume costs: training throughput with backups every ``train.backup_every_steps`` (the
default) against backups off, and the time from a SIGKILL to training again under ``recsys submit``.

Baseline and candidate run interleaved in the same invocation (fresh process each, medians):

    .venv/bin/python benchmarks/resume.py --json out/bench/resume.json

Throughput counts the whole training loop (steps and saves), from the trainer's ``loop_seconds``;
one evaluation at the end is outside it. The restart time is measured on the supervisor's output:
from the kill to the first heartbeat of the resumed attempt (startup, restore and the first steps).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "synthetic_criteo"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the results here")
    p.add_argument("--rows", type=int, default=131072, help="synthetic training rows")
    p.add_argument("--steps", type=int, default=300, help="training steps per run")
    p.add_argument("--repeats", type=int, default=3, help="runs of each variant (interleaved)")
    p.add_argument("--backup_every", type=int, default=0, help="0 = the config's default interval")
    p.add_argument("--kill_repeats", type=int, default=2, help="kills per worker count")
    p.add_argument("--kill_workers", default="1,2", help="worker counts for the restart timing")
    p.add_argument("--data_dir", help="reuse/write the synthetic data here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--set", action="append", default=[], help="config override key=value")
    p.add_argument("--model_dir", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def run_worker(args: argparse.Namespace) -> None:
    """One training run in this process; prints its loop throughput."""
    from recsys import config as cfg
    from recsys.train.trainer import train

    exp = cfg.load(CONFIG, [f"data.spec_dir={args.data_dir}", *args.set])
    result = train(exp, args.model_dir, export=False)
    rate = exp.train.steps * exp.data.batch_size / result.loop_seconds
    print("RESULT " + json.dumps({"ex_per_s": rate, "loop_seconds": result.loop_seconds}), flush=True)


def _throughput(data_dir: str, sets: list[str]) -> float:
    with tempfile.TemporaryDirectory(prefix="recsys-bench-resume-") as model_dir:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--data_dir", data_dir,
               "--model_dir", model_dir] + [f"--set={s}" for s in sets]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if proc.returncode:
            raise SystemExit(f"training run failed:\n{proc.stderr[-3000:]}")
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return float(json.loads(line[len("RESULT "):])["ex_per_s"])


def _restart_seconds(data_dir: str, workers: int, steps: int, kill_at: int) -> dict[str, float]:
    """Kill worker 0 of a running ``recsys submit`` job at step ``kill_at`` (after a backup); seconds
    until the next attempt has restored it and trains again."""
    with tempfile.TemporaryDirectory(prefix="recsys-bench-kill-") as model_dir:
        sets = [f"data.spec_dir={data_dir}", f"train.steps={steps}", "train.verbose=0",
                "export.enabled=false", "train.tensorboard=false"]
        cmd = [sys.executable, "-m", "recsys.cli", "submit", "--config", CONFIG, "--workers", str(workers),
               "--model_dir", model_dir, "--backoff_delay", "0", "--heartbeat_every", "1",
               "--grace_period", "2", "--status_every", "1000"] + [f"--set={s}" for s in sets]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"), start_new_session=True)
        marks: dict[str, float] = {}
        pids: list[int] = []
        killed = threading.Event()
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.monotonic()
            if "pids worker-" in line and not pids:
                pids = [int(p) for p in re.findall(r"worker-\d+=(\d+)", line)]
            beat = re.search(r"\[worker-0\] recsys-heartbeat step=(\d+) phase=(\w+)", line)
            if beat and not killed.is_set() and int(beat.group(1)) >= kill_at:
                os.kill(pids[0], signal.SIGKILL)
                marks["kill"] = now
                killed.set()
            elif "[submit] attempt 1 failed" in line and "kill" in marks:
                marks["detected"] = now
            elif "attempt 2: all" in line and "up after" in line:
                marks["up"] = now
            elif "resuming from" in line and "kill" in marks and "restored" not in marks:
                marks["restored"] = now
            elif beat and killed.is_set() and beat.group(2) == "train" and "detected" in marks:
                marks["training"] = now
                break
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if "training" not in marks or "restored" not in marks:
        raise SystemExit(f"the job did not resume from its backup and train again: {marks}")
    return {k: marks[k] - marks["kill"] for k in ("detected", "up", "restored", "training")}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return
    import recsys.compat  # noqa: F401  (Keras 2 before TensorFlow)
    from pipelines.synthetic_spec import SyntheticLayout, write_synthetic

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="recsys-bench-resume-data-")
    if not os.path.exists(os.path.join(data_dir, "feature_spec.json")):
        write_synthetic(data_dir, num_train=args.rows, num_eval=4096,
                        layout=SyntheticLayout(cardinality=1000), num_train_shards=8)
    out = measure(data_dir, args.steps, args.repeats, args.backup_every, args.kill_repeats,
                  args.kill_workers, args.set)
    print_resume(out)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)


def measure(data_dir: str, steps: int = 300, repeats: int = 3, backup_every: int = 0, kill_repeats: int = 2,
            kill_workers: str = "1,2", sets: list[str] | None = None) -> dict:
    """Both measurements on the synthetic data in ``data_dir``; a JSON-ready dict."""
    from recsys.config import load

    interval = backup_every or load(CONFIG).train.backup_every_steps
    common = [f"train.steps={steps}", f"train.eval_every={steps}", "train.verbose=0",
              "train.checkpoint=false", "train.tensorboard=false", *(sets or [])]
    rates: dict[str, list[float]] = {"backups_off": [], "backups_on": []}
    for i in range(repeats):
        for name, every in (("backups_off", 0), ("backups_on", interval)):
            rates[name].append(_throughput(data_dir, common + [f"train.backup_every_steps={every}"]))
            print(f"repeat {i + 1}/{repeats} {name:12s} {rates[name][-1]:>10,.0f} ex/s", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    restarts: dict[str, dict[str, float]] = {}
    for workers in [int(w) for w in kill_workers.split(",") if w]:
        kill_at = interval + interval // 2  # mid-way between two backups
        runs = [_restart_seconds(data_dir, workers, steps, kill_at) for _ in range(kill_repeats)]
        restarts[f"{workers}_workers"] = {k: statistics.median(r[k] for r in runs if k in r) for k in runs[0]}
        print(f"{workers} worker(s): kill -> {restarts[f'{workers}_workers']}", flush=True)
    return {
        "config": CONFIG, "steps": steps, "backup_every_steps": interval, "cpu_count": os.cpu_count(),
        "details": {k: {"median": med[k], "runs": v} for k, v in rates.items()},
        "backup_cost": 1.0 - med["backups_on"] / med["backups_off"],
        "restart_seconds": restarts,
    }


def print_resume(out: dict) -> None:
    """The two tables of :func:`measure`."""
    med = {k: v["median"] for k, v in out["details"].items()}
    interval, restarts = out["backup_every_steps"], out["restart_seconds"]
    print()
    print(f"{'run':<34}{'median ex/s':>14}")
    for k in med:
        print(f"{k + (f' (every {interval} steps)' if k == 'backups_on' else ''):<34}{med[k]:>14,.0f}")
    print(f"backup cost: {100 * out['backup_cost']:.1f}% of throughput (target: at most 5%)")
    print(f"\n{'kill -> (median s)':<20}{'detected':>10}{'all up':>10}{'restored':>10}{'training':>10}")
    for k, r in restarts.items():
        print(f"{k:<20}{r['detected']:>10.1f}{r['up']:>10.1f}{r.get('restored', float('nan')):>10.1f}"
              f"{r['training']:>10.1f}")


if __name__ == "__main__":
    main()
