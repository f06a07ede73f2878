"""In-process serving latency of a study's exports, every variant interleaved, at batch 1 and 256.

A study measures each variant's latency once (median of 15 calls, one variant after the other); on a
shared machine the load moves between variants. Here rounds interleave all variants so the load hits
them alike; per variant and batch the median and the 10th percentile over all rounds' calls, each with
its ratio to the baseline's. Reads version 1 of each ``<export_root>/<variant>`` (``--export_dir`` of
``recsys study``) on eval rows of ``spec_dir``. Prints JSON, then one markdown row per variant.

    python benchmarks/export_latency.py out/exports/criteo out/data/criteo [--baseline relu]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(export_root: str, spec_dir: str, rounds: int, calls: int) -> dict[tuple[str, int], list[float]]:
    """Seconds of every timed call, per (variant, batch): ``rounds`` × ``calls``, variants interleaved."""
    from recsys.compat import tf
    from recsys.study.cost import BATCHES, latency_inputs

    variants = sorted(os.listdir(export_root))
    fns = {v: tf.saved_model.load(os.path.join(export_root, v, "1")).signatures["serving_default"]
           for v in variants}
    inputs = latency_inputs(spec_dir, BATCHES)
    for v in variants:  # warm-up: tracing and first-call allocations
        for b in BATCHES:
            for _ in range(5):
                fns[v](**inputs[b])
    times: dict[tuple[str, int], list[float]] = {(v, b): [] for v in variants for b in BATCHES}
    for _ in range(rounds):
        for v in variants:
            for b in BATCHES:
                for _ in range(calls):
                    start = time.perf_counter()
                    fns[v](**inputs[b])["probability"].numpy()
                    times[(v, b)].append(time.perf_counter() - start)
    return times


def summarise(times: dict[tuple[str, int], list[float]], baseline: str) -> dict[str, dict[str, Any]]:
    """Median and p10 in ms per variant and batch, each with its ratio to ``baseline``'s."""
    import numpy as np

    batches = sorted({b for _, b in times})
    med = {k: statistics.median(x) for k, x in times.items()}
    p10 = {k: float(np.percentile(x, 10)) for k, x in times.items()}
    return {v: {str(b): {"median_ms": med[(v, b)] * 1e3, "median_ratio": med[(v, b)] / med[(baseline, b)],
                         "p10_ms": p10[(v, b)] * 1e3, "p10_ratio": p10[(v, b)] / p10[(baseline, b)]}
                for b in batches}
            for v in sorted({v for v, _ in times})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_root")
    parser.add_argument("spec_dir")
    parser.add_argument("--baseline", default="relu")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    sys.path.insert(0, REPO)
    out = summarise(measure(args.export_root, args.spec_dir, args.rounds, args.calls), args.baseline)
    print(json.dumps(out, indent=1))
    for v, o in out.items():
        cells = [f"{o[str(b)][f'{q}_ms']:.3g} ms ({o[str(b)][f'{q}_ratio']:.2f}×)"
                 for q in ("median", "p10") for b in o]
        print(f"| `{v}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
