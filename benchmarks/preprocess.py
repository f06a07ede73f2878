"""Preprocessing throughput: rows/s end to end on synthetic Criteo-layout TSV, and peak memory.

    python benchmarks/preprocess.py [--rows 1000000] [--sizes 100000,1000000] [--repeats 3]
        [--json out.json] [--direct_num_workers 2] [--direct_running_mode multi_processing]

Each size runs with the columnar training copy (the default output) and without it, interleaved, each
``--repeats`` times; the medians go in the table. The headline (``rows_per_s``, ``peak_rss_mb`` in the
JSON) is ``--rows`` rows with the columnar copy. Add 10000000 to ``--sizes`` for 10^7 rows (a 2.5 GB
TSV and several minutes a run on 2 cores; off by default for that reason).

The raw TSV is generated first (not timed); each run times the whole pipeline (planning, Beam start-up,
parsing, validation, shard writing, vocabularies, spec). Peak RSS is the largest sum, sampled every
0.2 s, of the resident sizes of this process and all its descendants (the Beam SDK workers are
grandchildren, started through a shell), so shared pages count once per process: an upper bound.
``launcher_peak_rss_mb`` (the "launcher MB" column) is this process's own peak within it: the launcher's
imports and, with the Direct runner, the Beam runner itself (it holds the data between stages).
CPU is user + system of this process and its reaped descendants. On a shared machine wall time is
noisy; CPU seconds per row are the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines.config import PreprocessConfig  # noqa: E402
from pipelines.pipeline import run  # noqa: E402
from pipelines.sources.criteo import criteo_schema  # noqa: E402
from pipelines.sources.synthetic import SyntheticCriteo  # noqa: E402

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def tree_rss_parts_mb(root: int) -> tuple[float, float]:
    """(summed resident size of ``root`` and all its descendants, that of ``root`` alone) (Linux /proc)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    stat = fh.read()
            except OSError:
                continue
            parent[int(entry)] = int(stat[stat.rindex(b")") + 2 :].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        kids = [pid for pid, ppid in parent.items() if ppid in frontier and pid not in tree]
        tree.update(kids)
        frontier = kids
    total = own = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                pages = int(fh.read().split()[1])
        except OSError:
            continue
        total += pages
        own += pages if pid == root else 0
    return total * _PAGE_MB, own * _PAGE_MB


class _TreeRss(threading.Thread):
    """Samples :func:`tree_rss_parts_mb` of this process every 0.2 s; ``stop()`` returns the peak of the
    sum. ``launcher_peak_mb`` is this process's own peak (the Beam runner and the launcher's imports)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_mb, self.launcher_peak_mb = tree_rss_parts_mb(os.getpid())
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.2):
            total, own = tree_rss_parts_mb(os.getpid())
            self.peak_mb = max(self.peak_mb, total)
            self.launcher_peak_mb = max(self.launcher_peak_mb, own)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return self.peak_mb


def _cpu_seconds() -> float:
    """User + system CPU of this process and its reaped descendants (the Beam SDK workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _tsv(work: str, rows: int) -> str:
    path = os.path.join(work, f"criteo-synthetic-{rows}.tsv")
    if not os.path.exists(path):
        t = time.time()
        SyntheticCriteo(seed=0).write_tsv(path, rows)
        print(f"generated {rows:,} rows ({os.path.getsize(path) / 2**20:.0f} MiB) "
              f"in {time.time() - t:.1f} s (not timed)")
    return path


def _one(work: str, rows: int, columnar: bool, beam_args: list[str]) -> dict:
    """One timed pipeline run: seconds, CPU seconds, peak RSS of the process tree."""
    config = PreprocessConfig(source="criteo", output=os.path.join(work, "out"), schema=criteo_schema(),
                              inputs=(_tsv(work, rows),), columnar_chunk_rows=1024 if columnar else 0)
    sampler = _TreeRss()
    sampler.start()
    cpu0 = _cpu_seconds()
    summary = run(config, beam_args)
    cpu = _cpu_seconds() - cpu0
    peak = sampler.stop()
    assert summary.spec is not None and summary.spec.counts.read == rows, summary
    assert bool(summary.spec.data.columnar_pattern) == columnar
    print(f"  {rows:>10,} rows, columnar {'on ' if columnar else 'off'}: {summary.seconds:6.2f} s, "
          f"{rows / summary.seconds:>8,.0f} rows/s, {cpu:6.1f} CPU-s ({cpu / rows * 1e6:5.1f} CPU-us/row), "
          f"peak RSS {peak:,.0f} MB (launcher {sampler.launcher_peak_mb:,.0f} MB)", flush=True)
    return {"seconds": summary.seconds, "cpu_seconds": cpu, "peak_rss_mb": peak,
            "launcher_peak_rss_mb": sampler.launcher_peak_mb}


def _summary(rows: int, runs: list[dict]) -> dict:
    seconds = statistics.median(r["seconds"] for r in runs)
    cpu = statistics.median(r["cpu_seconds"] for r in runs)
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds, 1),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "launcher_peak_rss_mb": round(max(r["launcher_peak_rss_mb"] for r in runs), 1),
        "runs_seconds": [round(r["seconds"], 3) for r in runs],
        "cpu_seconds": round(cpu, 2),
        "cpu_us_per_row": round(cpu / rows * 1e6, 2),
        "rows_per_cpu_s": round(rows / cpu, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="the headline size")
    ap.add_argument("--sizes", default="100000,1000000",
                    help="comma-separated row counts for the scaling table (add 10000000 for 10^7)")
    ap.add_argument("--json", default="", help="write the result as JSON here")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per size and mode; medians reported")
    ap.add_argument("--direct_num_workers", type=int, default=2)
    ap.add_argument(
        "--direct_running_mode",
        default="multi_processing",
        choices=["in_memory", "multi_threading", "multi_processing"],
    )
    ap.add_argument("--workdir", default="", help="where the TSVs and output go (default: a tmp dir)")
    args = ap.parse_args()

    work = args.workdir or tempfile.mkdtemp(prefix="preprocess-bench-")
    os.makedirs(work, exist_ok=True)  # a --workdir that does not exist yet
    beam_args = [
        f"--direct_num_workers={args.direct_num_workers}",
        f"--direct_running_mode={args.direct_running_mode}",
    ]
    sizes = sorted({args.rows, *(int(s) for s in args.sizes.split(",") if s.strip())})
    for rows in sizes:
        _tsv(work, rows)
    table: dict[str, dict] = {}
    for rows in sizes:
        runs: dict[bool, list[dict]] = {True: [], False: []}
        for _ in range(args.repeats):  # interleaved: both modes see the same load
            for columnar in (True, False):
                runs[columnar].append(_one(work, rows, columnar, beam_args))
        for columnar in (True, False):
            table[f"{rows}/{'columnar' if columnar else 'tfexample_only'}"] = _summary(rows, runs[columnar])
    head = table[f"{args.rows}/columnar"]
    result = {
        **head,
        "columnar_off": table[f"{args.rows}/tfexample_only"],
        "sizes": table,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "workers": args.direct_num_workers,
        "running_mode": args.direct_running_mode,
    }
    print(f"\n{'rows':>11} {'columnar':>9} {'seconds':>9} {'rows/s':>9} {'CPU-us/row':>11} "
          f"{'peak RSS MB':>12} {'launcher MB':>12}  (median of {args.repeats})")
    for key, r in table.items():
        mode = "on" if key.endswith("/columnar") else "off"
        print(f"{r['rows']:>11,} {mode:>9} {r['seconds']:>9.2f} {r['rows_per_s']:>9,.0f} "
              f"{r['cpu_us_per_row']:>11.1f} {r['peak_rss_mb']:>12,.0f} {r['launcher_peak_rss_mb']:>12,.0f}")
    print(f"headline ({args.rows:,} rows, columnar on): {head['rows_per_s']:,.0f} rows/s, peak RSS "
          f"{head['peak_rss_mb']:,.0f} MB; 1-min load average at the end {result['load_average_1m']} on "
          f"{os.cpu_count()} cores (wall time is shared-machine noise; CPU-us/row is steadier)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
