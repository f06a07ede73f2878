"""The table-size part of benchmarks/train.py (``--modes ...,tables``): model-only ex/s at small and big
fused tables (default 10^4 and 10^6 rows) for all-Adam (``train.embedding_optimizer=same``) and each
embedding optimizer, every (rows, optimizer) run interleaved in each repeat so a load spike hits them
alike; the ratio big/small per optimizer; and the eval AUC of each optimizer after the same steps on the
benchmark's data (``--tables_auc_steps``). Each run is a subprocess (train.py ``--mode model`` or
``recsys train``); this module only plans them and tabulates them."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

import scaling


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tables_rows", default="10000,1000000",
                   help="tables mode: fused-table rows, smallest first (every categorical feature hashed to "
                        "rows/26 buckets); the ratios are each size over the smallest")
    p.add_argument("--tables_optimizers", default="same,adagrad,sgd,lazy_adam",
                   help="tables mode: train.embedding_optimizer values (same: Adam for every variable)")
    p.add_argument("--tables_embedding_lr", default="adagrad=0.01,sgd=0.05",
                   help="tables mode: train.embedding_learning_rate per optimizer (others: the dense rate)")
    p.add_argument("--tables_auc_steps", type=int, default=300,
                   help="tables mode: train each optimizer this many steps at the biggest table and report "
                        "its eval AUC beside all-Adam's (0: skip)")


def _sets(opt: str, rates: dict[str, str]) -> list[str]:
    sets = [f"train.embedding_optimizer={opt}"]
    return sets + [f"train.embedding_learning_rate={rates[opt]}"] if opt in rates else sets


def _auc(spec_dir: str, sets: list[str], steps: int, config: str) -> dict:
    """Eval metrics of a ``recsys train`` run of ``steps`` steps (no export, no backups)."""
    with tempfile.TemporaryDirectory(prefix="recsys-bench-tables-") as model_dir:
        every = [f"data.spec_dir={spec_dir}", f"train.steps={steps}", "train.eval_every=0",
                 "train.verbose=0", "export.enabled=false", "train.tensorboard=false",
                 "train.checkpoint=false", "train.backup_every_steps=0", *sets]  # fmt: skip
        cmd = [sys.executable, "-m", "recsys.cli", "train", "--config", config, "--model_dir", model_dir,
               *[f"--set={s}" for s in every]]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        if proc.returncode:
            raise SystemExit(f"tables AUC run {sets} failed:\n{proc.stderr[-3000:]}")
        lines = proc.stdout.splitlines()
        start = max(i for i, line in enumerate(lines) if line.startswith("{"))
        return json.loads("\n".join(lines[start:]))["eval"]


def run_tables(args: argparse.Namespace, data_dir: str, base: list[str], config: str) -> dict:
    """ex/s per (rows, optimizer), interleaved over ``args.repeats`` rounds; ratios; AUC per optimizer."""
    rows_list = [int(float(x)) for x in args.tables_rows.split(",") if x]
    opts = [x for x in args.tables_optimizers.split(",") if x]
    rates_lr = dict(x.split("=", 1) for x in args.tables_embedding_lr.split(",") if x)
    specs = {rows: scaling.hashed_spec(data_dir, rows) for rows in rows_list}
    rates: dict[tuple[int, str], list[float]] = {}
    for _ in range(args.repeats):
        for rows in rows_list:
            for opt in opts:
                sets = _sets(opt, rates_lr)
                got = scaling._model_run(base, specs[rows][0], 4096, args.scaling_examples, sets)
                rates.setdefault((rows, opt), []).extend(got)
                print(f"tables {specs[rows][1]:>10,} rows {opt:>9}: {scaling.summary(rates[rows, opt])}",
                      flush=True)
    small, big = rows_list[0], rows_list[-1]
    med = {key: scaling.summary(r)["median"] for key, r in rates.items()}
    baseline = "same" if "same" in opts else opts[0]
    runs, details = [], {}
    for rows in rows_list:
        for opt in opts:
            r = details[f"tables_rows_{rows}_{opt}"] = scaling.summary(rates[rows, opt])
            runs.append({"rows": specs[rows][1], "requested_rows": rows, "embedding_optimizer": opt,
                         "ex_per_s": r["median"], **r, "over_smallest": r["median"] / med[small, opt],
                         "over_adam_smallest": r["median"] / med[small, baseline]})  # fmt: skip
    ratios = {opt: med[big, opt] / med[small, opt] for opt in opts}
    out = {"rows": runs, "ratio_big_over_small": ratios, "small_rows": specs[small][1],
           "big_rows": specs[big][1], "embedding_learning_rates": rates_lr, "repeats": args.repeats,
           "global_batch": 4096}
    if args.tables_auc_steps:
        out["auc"] = {"steps": args.tables_auc_steps, "rows": specs[big][1], "by_optimizer": {}}
        for opt in opts:
            metrics = _auc(specs[big][0], _sets(opt, rates_lr), args.tables_auc_steps, config)
            out["auc"]["by_optimizer"][opt] = metrics
            print(f"tables AUC {opt:>9} after {args.tables_auc_steps} steps: {metrics.get('auc')}",
                  flush=True)
    return {"tables": out, "tables_details": details}


def print_tables(out: dict) -> None:
    """The table-size table: ex/s per rows and embedding optimizer, the big/small ratios, the AUCs."""
    t = out["tables"]
    print(f"\nmodel-only ex/s against fused-table rows per embedding optimizer (global batch "
          f"{t['global_batch']}, interleaved, {t['repeats']} repeat(s); same = Adam for every variable):")
    print(f"{'rows':>12}{'emb. optimizer':>16}{'median ex/s':>14}{'min':>12}{'max':>12}"
          f"{'/ own small':>13}{'/ Adam small':>14}")
    for r in t["rows"]:
        print(f"{r['rows']:>12,}{r['embedding_optimizer']:>16}{r['median']:>14,.0f}{r['min']:>12,.0f}"
              f"{r['max']:>12,.0f}{r['over_smallest']:>13.3f}{r['over_adam_smallest']:>14.3f}")
    print(f"ex/s at {t['big_rows']:,} rows / at {t['small_rows']:,} rows: "
          + ", ".join(f"{k} {v:.3f}" for k, v in t["ratio_big_over_small"].items()) + "  (target >= 0.8)")
    if "auc" in t:
        a = t["auc"]
        print(f"eval AUC after {a['steps']} steps at {a['rows']:,} rows: "
              + ", ".join(f"{k} {v['auc']:.4f}" for k, v in a["by_optimizer"].items()))

