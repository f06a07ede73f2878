"""A plan as a readable table, and the one call ``recsys submit --dry_run`` makes to print it."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from pipelines import feature_spec
from recsys.config.schema import Experiment
from recsys.planning.cost import SLOTS, Plan, TablePlan, plan_experiment
from recsys.planning.quantity import format_bytes, parse_quantity


def _row(t: TablePlan) -> list[str]:
    shape = f"{t.rows:,} x {t.dim}" if t.dim else f"{t.rows:,} params"
    wire = format_bytes(t.allreduce_bytes) if t.allreduce_bytes else "-"
    feats = ",".join(t.features[:4]) + (f",+{len(t.features) - 4}" if len(t.features) > 4 else "")
    return [t.name, feats or "-", shape, format_bytes(t.weight_bytes), format_bytes(t.slot_bytes),
            format_bytes(t.peak_bytes), t.gradient, wire]  # fmt: skip


def _optimizers(plan: Plan) -> str:
    """"adam (2 slot(s) per weight)", or the tables' and the dense layers' when they differ."""
    dense = f"{plan.optimizer} ({SLOTS[plan.optimizer]} slot(s) per weight)"
    if plan.embedding_optimizer == plan.optimizer:
        return dense
    return (f"tables {plan.embedding_optimizer} ({plan.embedding_slots} slot(s) per weight), dense layers "
            f"{dense}")


def render(plan: Plan) -> str:
    """The plan as an aligned text table with totals, warnings and the formulas' assumptions."""
    head = ["table", "features", "rows x dim", "weights", "slots", "peak/worker", "grad", "all-reduce/step"]
    rows = [_row(t) for t in plan.all_tables]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 3 or i == 6 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))  # fmt: skip

    out = [
        f"plan for {plan.experiment}: {plan.workers} worker(s), {plan.replicas} replica(s), global batch "
        f"{plan.global_batch} ({plan.global_batch // plan.replicas} per replica), {_optimizers(plan)}, "
        "float32, every table replicated on every worker",
        "",
        line(head),
        line(["-" * w for w in widths]),
        *(line(r) for r in rows),
        "",
        f"per worker: state (weights + slots) {format_bytes(plan.state_bytes)}, peak "
        f"{format_bytes(plan.peak_bytes)}, needs {format_bytes(plan.need_bytes)} with headroom"
        + (f" of {format_bytes(plan.memory_bytes)}: {'fits' if plan.fits else 'DOES NOT FIT'}"
           if plan.memory_bytes else ""),
        f"all-reduce per step and replica: dense {format_bytes(plan.allreduce_dense_bytes)}, sparse "
        f"{format_bytes(plan.allreduce_sparse_bytes)}, metrics {format_bytes(plan.metrics_allreduce_bytes)}",
    ]
    out += [f"warning: {w}" for w in plan.warnings]
    return "\n".join(out)


def submit_plan(
    experiment: Experiment, workers: int, memory: str, stream: TextIO = sys.stderr
) -> Plan | None:
    """Print the plan of a job about to be submitted (``recsys submit --dry_run``); None if no spec."""
    spec_dir = experiment.data.spec_dir
    path = os.path.join(spec_dir, feature_spec.SPEC_FILENAME)
    if not spec_dir or "://" in spec_dir or not os.path.isfile(path):
        print(f"[plan] skipped: no {feature_spec.SPEC_FILENAME} at data.spec_dir={spec_dir!r} on this "
              "machine", file=stream, flush=True)  # fmt: skip
        return None
    spec = feature_spec.load(spec_dir)
    plan = plan_experiment(experiment, spec, workers, memory_bytes=parse_quantity(memory))
    print("\n".join(f"[plan] {x}" for x in render(plan).splitlines()), file=stream, flush=True)
    return plan
