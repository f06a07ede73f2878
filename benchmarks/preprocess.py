"""Preprocessing throughput: rows/s end to end on synthetic Criteo-layout TSV, and peak memory.

    python benchmarks/preprocess.py [--rows 1000000] [--json out.json] [--repeats 3]
        [--direct_num_workers 2] [--direct_running_mode multi_processing]

The raw TSV is generated first (not timed); each repeat then times the whole pipeline run on it
(planning, Beam start-up, parsing, validation, shard writing, vocabularies, spec). Peak RSS sums the
launcher and, for multi-processing, the largest resident size seen of the worker processes.
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
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines.config import PreprocessConfig  # noqa: E402
from pipelines.pipeline import run  # noqa: E402
from pipelines.sources.criteo import criteo_schema  # noqa: E402
from pipelines.sources.synthetic import SyntheticCriteo  # noqa: E402


class _ChildRss(threading.Thread):
    """Samples the summed RSS of this process's children (Beam SDK workers) every 0.2 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_mb = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        me = str(os.getpid())
        while not self._halt.wait(0.2):
            try:
                out = subprocess.run(
                    ["ps", "-o", "ppid=,rss=", "-A"], capture_output=True, text=True, check=False
                ).stdout
            except OSError:
                return
            total = (
                sum(
                    int(rss)
                    for ppid, rss in (ln.split() for ln in out.splitlines() if ln.strip())
                    if ppid == me
                )
                / 1024
            )
            self.peak_mb = max(self.peak_mb, total)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return self.peak_mb


def _cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children (the Beam SDK workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--json", default="", help="write the result as JSON here")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs; the median is reported")
    ap.add_argument("--direct_num_workers", type=int, default=2)
    ap.add_argument(
        "--direct_running_mode",
        default="multi_processing",
        choices=["in_memory", "multi_threading", "multi_processing"],
    )
    ap.add_argument("--workdir", default="", help="where the TSV and output go (default: a tmp dir)")
    args = ap.parse_args()

    work = args.workdir or tempfile.mkdtemp(prefix="preprocess-bench-")
    os.makedirs(work, exist_ok=True)  # a --workdir that does not exist yet
    tsv = os.path.join(work, f"criteo-synthetic-{args.rows}.tsv")
    if not os.path.exists(tsv):
        t = time.time()
        SyntheticCriteo(seed=0).write_tsv(tsv, args.rows)
        print(
            f"generated {args.rows:,} rows ({os.path.getsize(tsv) / 2**20:.0f} MiB) "
            f"in {time.time() - t:.1f} s (not timed)"
        )
    config = PreprocessConfig(
        source="criteo", output=os.path.join(work, "out"), schema=criteo_schema(), inputs=(tsv,)
    )
    beam_args = [
        f"--direct_num_workers={args.direct_num_workers}",
        f"--direct_running_mode={args.direct_running_mode}",
    ]
    seconds, child_peaks, cpu = [], [], []
    for i in range(args.repeats):
        sampler = _ChildRss()
        sampler.start()
        cpu0 = _cpu_seconds()
        summary = run(config, beam_args)
        cpu.append(_cpu_seconds() - cpu0)
        child_peaks.append(sampler.stop())
        seconds.append(summary.seconds)
        assert summary.spec is not None and summary.spec.counts.read == args.rows, summary
        print(
            f"run {i + 1}: {summary.seconds:.2f} s, {args.rows / summary.seconds:,.0f} rows/s, "
            f"{cpu[-1]:.1f} CPU-s ({args.rows / cpu[-1]:,.0f} rows per CPU-second)"
        )
    median = statistics.median(seconds)
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "rows": args.rows,
        "seconds": round(median, 3),
        "rows_per_s": round(args.rows / median, 1),
        "peak_rss_mb": round(own_peak + max(child_peaks), 1),
        "runs_seconds": [round(s, 3) for s in seconds],
        "cpu_seconds": round(statistics.median(cpu), 2),
        "rows_per_cpu_s": round(args.rows / statistics.median(cpu), 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "workers": args.direct_num_workers,
        "running_mode": args.direct_running_mode,
    }
    print(f"\n{'rows':>10} {'seconds':>9} {'rows/s':>10} {'peak RSS MB':>12}  (median of {len(seconds)})")
    print(
        f"{result['rows']:>10,} {result['seconds']:>9.2f} {result['rows_per_s']:>10,.0f} "
        f"{result['peak_rss_mb']:>12,.0f}"
    )
    if len(seconds) > 1:
        print(f"spread: min {min(seconds):.2f} s, max {max(seconds):.2f} s")
    print(
        f"CPU: {result['cpu_seconds']:.1f} s ({result['rows_per_cpu_s']:,.0f} rows per CPU-second); "
        f"1-min load average at the end {result['load_average_1m']} on {os.cpu_count()} cores"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
