"""`recsys plan`'s per-worker peak against the measured peak RSS of real training runs.

Two runs of ``recsys.train.train`` (train, evaluate, export) differ only in one hashed table's size
(2e5 and 2e6 rows x dim 16); the difference of their peak RSS cancels the TF runtime baseline and must
match the difference of the plan's per-worker peaks within 25%. The smaller table takes the dense
gradient path (under train.dense_grad_max_elements), the larger the sparse one, so both factors count.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from pipelines import feature_spec
from recsys import config as cfg
from recsys.planning import plan_experiment

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = (200_000, 2_000_000)
OVERRIDES = [
    "model.embedding_dim=16", "model.bottom_mlp=[8]", "model.top_mlp=[8]", "data.batch_size=512",
    "data.shuffle_buffer=0", "train.steps=20", "train.steps_per_execution=5", "train.optimizer=adam",
    "train.checkpoint=false", "train.tensorboard=false", "train.verbose=0",
]  # fmt: skip


@pytest.fixture(scope="module")
def spec_dirs(tmp_path_factory) -> dict[int, str]:
    """One spec per size over the same shards: C1 hashed to ``size`` buckets, C2 to 100."""
    from pipelines.synthetic_spec import SyntheticLayout, write_synthetic

    root = tmp_path_factory.mktemp("plan_rss")
    layout = SyntheticLayout(num_numeric=2, num_categorical=2, hash_every=1, cardinality=50)
    base = write_synthetic(str(root / "data"), num_train=4096, num_eval=1024, layout=layout,
                           num_train_shards=2)  # fmt: skip
    data = dataclasses.replace(
        base.data,
        train_pattern=base.path(base.data.train_pattern),
        eval_pattern=base.path(base.data.eval_pattern),
    )
    out = {}
    for size in SIZES:
        feats = tuple(dataclasses.replace(f, hash_buckets=size) if f.name == "C1" else f
                      for f in base.features)  # fmt: skip
        d = str(root / f"spec-{size}")
        dataclasses.replace(base, features=feats, data=data).save(d)
        out[size] = d
    return out


def _peak_rss(spec_dir: str, model_dir: str) -> int:
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "rss_worker.py"), spec_dir, model_dir, *OVERRIDES],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("PEAK_RSS_BYTES ")][-1]
    return int(line.split()[1])


def test_plan_explains_peak_rss_difference(spec_dirs, tmp_path):
    plans = {s: plan_experiment(cfg.load(None, [f"data.spec_dir={d}", *OVERRIDES]), feature_spec.load(d))
             for s, d in spec_dirs.items()}  # fmt: skip
    small, big = (plans[s].tables[0] for s in SIZES)
    assert (small.rows, small.dim, small.gradient) == (200_100, 16, "dense")
    assert (big.rows, big.dim, big.gradient) == (2_000_100, 16, "sparse")
    measured = {s: _peak_rss(d, str(tmp_path / f"run-{s}")) for s, d in spec_dirs.items()}
    predicted = plans[SIZES[1]].peak_bytes - plans[SIZES[0]].peak_bytes
    observed = measured[SIZES[1]] - measured[SIZES[0]]
    weights = big.weight_bytes - small.weight_bytes
    print(f"peak RSS growth {observed / weights:.2f}x the weights' growth, plan {predicted / weights:.2f}x")
    assert observed > 3 * weights  # more than weights + Adam slots: the transients are real
    assert abs(observed - predicted) <= 0.25 * predicted, (
        f"peak RSS grew by {observed / 2**20:.0f} MiB, the plan says {predicted / 2**20:.0f} MiB "
        f"({observed / weights:.2f} vs {predicted / weights:.2f} x the weights' growth)"
    )
