"""CPU cost of starting a job: a short ``recsys train`` (import, build, trace, 40 steps, two
evaluations, export) and ``--print_config`` of the commands, in child-process CPU seconds (user + sys).

Most of a small job's CPU, and of the test suite's, is this fixed cost, not the training steps. With
``--baseline DIR`` (another checkout, e.g. ``git worktree add /tmp/base <commit>``) each run alternates
between that tree and this one (same data, same settings; interleaved so a load spike hits both), and
the table gives the medians and the ratio this/baseline.

    python benchmarks/startup.py --baseline /tmp/base --repeats 5 --json out/bench/startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETS = ["data.batch_size=64", "data.eval_batch_size=256", "data.shuffle_buffer=192",
        "train.steps_per_execution=3", "train.eval_every=20", "train.backup_every_steps=4",
        "export.warmup_requests=0", "model.bottom_mlp=[8]", "model.top_mlp=[16]"]
PRINT_CONFIG = {"study": ["--config", "synthetic_small"], "serve": [], "monitor": []}


def timed(cmd: list[str], tree: str) -> tuple[float, float]:
    """(child CPU seconds, wall seconds) of one command run from ``tree``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    env = dict(os.environ, PYTHONPATH=tree)
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed in {tree}:\n{proc.stderr[-3000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def cases(data: str, steps: int, scratch: str) -> dict[str, list[str]]:
    train = [sys.executable, "-m", "recsys.cli", "train", "--config", "synthetic_small",
             *[f"--set={s}" for s in [f"data.spec_dir={data}", f"train.steps={steps}", *SETS]]]
    out = {"train": train + ["--model_dir", os.path.join(scratch, "m")]}
    for command, extra in PRINT_CONFIG.items():
        out[f"{command} --print_config"] = [sys.executable, "-m", "recsys.cli", command, *extra,
                                            "--print_config"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", default="", help="another checkout to compare with (optional)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--json", default="", help="write the results here too")
    args = p.parse_args()
    sys.path.insert(0, HERE)
    from pipelines.synthetic_spec import SyntheticLayout, write_synthetic

    trees = {"this": HERE, **({"baseline": os.path.abspath(args.baseline)} if args.baseline else {})}
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="recsys-bench-startup-") as tmp:
        data = os.path.join(tmp, "data")
        write_synthetic(data, num_train=900, num_eval=300, num_train_shards=3, seed=3,
                        layout=SyntheticLayout(num_numeric=3, num_categorical=3, num_multi=1, cardinality=40))
        for r in range(args.repeats):
            for name, tree in (trees.items() if r % 2 == 0 else reversed(trees.items())):
                for case, cmd in cases(data, args.steps, tempfile.mkdtemp(dir=tmp)).items():
                    runs.setdefault(case, {}).setdefault(name, []).append(timed(cmd, tree))
            print(f"[startup] repeat {r + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    result: dict = {"repeats": args.repeats, "steps": args.steps, "trees": trees, "cases": {}}
    print(f"| case | {' | '.join(f'{t} CPU-s (median)' for t in trees)} | "
          + ("this / baseline |" if args.baseline else ""))
    print("|---|" + "---:|" * (len(trees) + (1 if args.baseline else 0)))
    for case, by_tree in runs.items():
        med = {t: statistics.median(c for c, _ in v) for t, v in by_tree.items()}
        row = {t: {"cpu_seconds_median": med[t], "cpu_seconds": [c for c, _ in v],
                   "wall_seconds_median": statistics.median(w for _, w in v)} for t, v in by_tree.items()}
        ratio = med["this"] / med["baseline"] if args.baseline else None
        result["cases"][case] = {"trees": row, "ratio": ratio}
        print(f"| {case} | {' | '.join(f'{med[t]:.2f}' for t in trees)} |"
              + (f" {ratio:.2f} |" if ratio is not None else ""))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
