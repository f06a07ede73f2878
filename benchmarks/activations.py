"""Forward+backward cost of every registered activation on a [4096, 1024] float32 tensor.

Each activation runs as one step y = f(x), dx = f'(x) * dy (the upstream gradient dy given, as inside
a network) in graph mode (``tf.function``) and under XLA (``jit_compile=True``). Rounds interleave all
activations so machine noise hits them alike; the figure is the median over rounds of per-round
medians. Prints a table with ratios to ReLU and exact GELU and writes JSON:
``[{"activation": name, "mode": "graph"|"xla", "median_ms": float}, ...]``.

    python benchmarks/activations.py [--json out.json] [--rounds 7] [--iters 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recsys import activations  # noqa: E402
from recsys.compat import tf  # noqa: E402

SHAPE = (4096, 1024)
# Targets of issue 2: SmeLU vs ReLU (graph, XLA) and vs exact GELU (graph).
TARGETS = [("smelu", "relu", "graph", 1.15), ("smelu", "relu", "xla", 1.05),
           ("smelu", "gelu", "graph", 0.5)]


def naive_smelu(x, beta=1.0):
    """The three-branch tf.where SmeLU (autodiff gradient): the slow reference, for context."""
    return tf.where(x <= -beta, tf.zeros_like(x),
                    tf.where(x >= beta, x, (x + beta) ** 2 / (4.0 * beta)))


def make_step(fn, jit: bool):
    @tf.function(jit_compile=jit)
    def step(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        return y, tape.gradient(y, x, output_gradients=dy)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="write results here")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--only", default="", help="comma-separated activation names")
    args = parser.parse_args()

    names = args.only.split(",") if args.only else activations.names()
    fns = {name: activations.get(name) for name in names}
    fns["smelu_tf_where (reference)"] = naive_smelu
    x = tf.random.stateless_normal(SHAPE, seed=[0, 1])
    dy = tf.random.stateless_normal(SHAPE, seed=[2, 3])
    steps = {(n, m): make_step(f, m == "xla") for n, f in fns.items() for m in ("graph", "xla")}
    for step in steps.values():  # warm-up: trace, compile, first allocations
        for _ in range(3):
            step(x, dy)[1].numpy()
    per_round: dict[tuple[str, str], list[float]] = {k: [] for k in steps}
    for r in range(args.rounds):
        for key, step in steps.items():
            times = []
            for _ in range(args.iters):
                t0 = time.perf_counter()
                step(x, dy)[1].numpy()
                times.append(time.perf_counter() - t0)
            per_round[key].append(statistics.median(times) * 1e3)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    median = {k: statistics.median(v) for k, v in per_round.items()}

    relu = {m: median[("relu", m)] for m in ("graph", "xla")}
    gelu = {m: median[("gelu", m)] for m in ("graph", "xla")} if "gelu" in fns else None
    print(f"\nforward+backward on {SHAPE} float32, median of {args.rounds} rounds x {args.iters}")
    print(f"{'activation':<28} {'graph ms':>9} {'xla ms':>8} {'graph/relu':>11} {'xla/relu':>9}"
          f" {'graph/gelu':>11}")
    for name in fns:
        g, xl = median[(name, "graph")], median[(name, "xla")]
        gg = f"{g / gelu['graph']:11.2f}" if gelu else f"{'-':>11}"
        print(f"{name:<28} {g:9.2f} {xl:8.2f} {g / relu['graph']:11.2f} {xl / relu['xla']:9.2f}"
              f" {gg}")
    ok = True
    print()
    for cand, base, mode, limit in TARGETS:
        if (cand, mode) in median and (base, mode) in median:
            ratio = median[(cand, mode)] / median[(base, mode)]
            status = "ok" if ratio <= limit else "MISSED"
            ok &= ratio <= limit
            print(f"target {cand}/{base} {mode} <= {limit}: {ratio:.3f} {status}")
    results = [{"activation": n, "mode": m, "median_ms": round(median[(n, m)], 4)}
               for (n, m) in steps]
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
        print(f"wrote {args.json}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
