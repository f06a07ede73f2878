"""The cost model's numbers from hand-built specs: tables, slots, gradient paths, bytes on the wire."""

from __future__ import annotations

import pytest

from pipelines.feature_spec import Feature, FeatureSpec, Label
from recsys import config as cfg
from recsys.planning import cost, format_bytes, parse_quantity, plan_experiment
from recsys.planning.render import render


def make_spec(cats: dict[str, int], numeric: int = 3, multi: dict[str, tuple[int, int]] | None = None):
    """numeric features I1.., hashed categoricals {name: buckets}, multi {name: (buckets, max_values)}."""
    feats = [Feature(name=f"I{i + 1}", kind="numeric", dtype="float32") for i in range(numeric)]
    feats += [Feature(name=n, kind="categorical", dtype="string", encoding="hash", hash_buckets=b)
              for n, b in cats.items()]  # fmt: skip
    feats += [Feature(name=n, kind="multi_categorical", dtype="string", encoding="hash", hash_buckets=b,
                      max_values=m) for n, (b, m) in (multi or {}).items()]  # fmt: skip
    return FeatureSpec(dataset="t", label=Label(), features=tuple(feats))


def exp(*overrides: str):
    return cfg.load(None, ["data.batch_size=1024", *overrides])


def test_features_of_one_dim_share_one_table_and_dims_split_them():
    spec = make_spec({"A": 100, "B": 1000, "C": 10})
    (table,) = plan_experiment(exp("model.embedding_dim=8"), spec).tables
    assert (table.name, table.features, table.rows, table.dim) == ("table_d8", ("A", "B", "C"), 1110, 8)
    t8, t32 = plan_experiment(exp("model.embedding_dim=8", "model.embedding_dims={B: 32}"), spec).tables
    assert (t8.features, t8.rows, t32.features, t32.rows, t32.dim) == (("A", "C"), 110, ("B",), 1000, 32)
    assert t32.weight_bytes == 1000 * 32 * 4
    with pytest.raises(ValueError, match="unknown categorical features"):
        plan_experiment(exp("model.embedding_dims={Z: 4}"), spec)


@pytest.mark.parametrize("optimizer, slots", [("adam", 2), ("adagrad", 1), ("sgd", 0)])
def test_optimizer_slots_and_peak_factor(optimizer, slots):
    spec = make_spec({"A": 1_000_000})
    plan = plan_experiment(exp("model.embedding_dim=16", f"train.optimizer={optimizer}"), spec)
    (t,) = plan.tables
    w = 1_000_000 * 16 * 4
    assert t.gradient == "sparse" and t.slot_bytes == slots * w
    assert t.peak_bytes == int(w * (1 + slots + cost.EVAL_COPY + cost.TRANSIENT))
    assert plan.state_bytes == (1 + slots) * (w + plan.dense.weight_bytes)


@pytest.mark.parametrize("embedding_optimizer, slots", [("lazy_adam", 2), ("adagrad", 1), ("sgd", 0)])
def test_the_tables_count_the_slots_of_their_own_optimizer(embedding_optimizer, slots):
    spec = make_spec({"A": 1_000_000})
    plan = plan_experiment(exp("model.embedding_dim=16", "train.optimizer=adam",
                               f"train.embedding_optimizer={embedding_optimizer}"), spec)
    (t,) = plan.tables
    w = 1_000_000 * 16 * 4
    assert (t.optimizer, t.slot_bytes) == (embedding_optimizer, slots * w)
    assert t.peak_bytes == int(w * (1 + slots + cost.EVAL_COPY + cost.TRANSIENT))
    assert (plan.dense.optimizer, plan.dense.slot_bytes) == ("adam", 2 * plan.dense.weight_bytes)
    assert plan.state_bytes == (1 + slots) * w + 3 * plan.dense.weight_bytes
    d = plan.to_dict()
    assert (d["embedding_optimizer"], d["embedding_optimizer_slots"], d["optimizer_slots"]) == (
        embedding_optimizer, slots, 2)
    assert f"tables {embedding_optimizer} ({slots} slot(s) per weight), dense layers adam (2" in render(plan)


def test_dense_params_count_bottom_cross_top_head():
    # 3 numeric -> bottom [4, 2]: 3*4+4 + 4*2+2 = 26; x = 2 + 2 feats * 8 = 18;
    # full cross x2: 2*(18*18+18) = 684; top [5]: 18*5+5 = 95; head 5+1 = 6.
    spec = make_spec({"A": 10, "B": 10})
    base = ["model.embedding_dim=8", "model.bottom_mlp=[4,2]", "model.top_mlp=[5]", "model.cross_layers=2"]
    assert plan_experiment(exp(*base, "model.cross_low_rank=0"), spec).dense.rows == 26 + 684 + 95 + 6
    # low rank 3: per layer 18*3 + 3*18 + 18 = 126.
    assert plan_experiment(exp(*base, "model.cross_low_rank=3"), spec).dense.rows == 26 + 252 + 95 + 6
    # dot: F = 3 (bottom output + 2 feats) -> 3 pairs, x = 3 + 2 = 5; top 5*5+5 = 30; head 6.
    dot = ["model.embedding_dim=2", "model.bottom_mlp=[4,2]", "model.top_mlp=[5]", "model.interaction=dot"]
    assert plan_experiment(exp(*dot), spec).dense.rows == 26 + 30 + 6


def test_allreduce_dense_is_the_whole_table_sparse_the_gathered_rows():
    spec = make_spec({"A": 50_000, "B": 50_000}, multi={"M": (1000, 5)})
    small = plan_experiment(exp("model.embedding_dim=16"), spec, workers=4)
    (t,) = small.tables
    assert t.gradient == "dense" and t.ids_per_example == 2 + 5
    assert t.allreduce_bytes == t.weight_bytes == 101_000 * 16 * 4
    sparse_exp = exp("model.embedding_dim=16", "train.dense_grad_max_elements=0")
    sparse = plan_experiment(sparse_exp, spec, workers=4)
    (s,) = sparse.tables
    # 4 replicas x 256 per replica x 7 ids x (16 floats + one int64 index).
    assert s.gradient == "sparse" and s.allreduce_bytes == 4 * 256 * 7 * (16 * 4 + 8)
    assert sparse.allreduce_sparse_bytes == s.allreduce_bytes
    assert sparse.allreduce_dense_bytes == sparse.dense.weight_bytes
    assert sparse.metrics_allreduce_bytes == 1024 * 8
    assert any("lower train.dense_grad_max_elements" in w for w in small.warnings)
    one = plan_experiment(exp("model.embedding_dim=16"), spec, workers=1).tables[0]
    assert one.allreduce_bytes == 0
    # Dense gradients with 2+ replicas: the all-reduce's input and output buffers on top.
    extra = cost.DENSE_GRAD_EXTRA + cost.ALLREDUCE_BUFFERS
    assert t.peak_bytes == int(t.weight_bytes * (1 + 2 + cost.EVAL_COPY + cost.TRANSIENT + extra))
    assert one.peak_bytes == int(t.weight_bytes * (1 + 2 + cost.EVAL_COPY + cost.TRANSIENT + 0.5))


def test_memory_refusal_names_the_biggest_table():
    spec = make_spec({"A": 100, "BIG": 30_000_000})
    e = exp("model.embedding_dim=16", "model.embedding_dims={A: 4}")
    plan = plan_experiment(e, spec, workers=2, memory_bytes=parse_quantity("16Gi"))
    assert plan.need_bytes > 16 * 2**30 and not plan.fits
    assert "table_d16" in plan.refusal() and "BIG" in plan.refusal() and "30,000,000 rows" in plan.refusal()
    assert plan.to_dict()["per_worker"]["fits"] is False
    roomy = plan_experiment(e, spec, workers=2, memory_bytes=parse_quantity("64Gi"))
    assert roomy.fits and roomy.refusal() == ""
    assert roomy.need_bytes == int(roomy.peak_bytes * cost.HEADROOM_FACTOR) + cost.RUNTIME_BYTES


def test_override_num_ids_and_cap():
    spec = make_spec({"A": 100, "B": 10_000_000})
    over = cost.override_num_ids(spec, {"A": 5000}, max_ids=1_000_000)
    assert [f.num_ids for f in over.by_kind("categorical")] == [5000, 1_000_000]
    with pytest.raises(ValueError, match="unknown categorical"):
        cost.override_num_ids(spec, {"I1": 3})


@pytest.mark.parametrize("text, expected", [
    ("16Gi", 16 * 2**30), ("512Mi", 512 * 2**20), ("8G", 8 * 10**9), ("1.5Gi", 3 * 2**29),
    ("1000", 1000), ("100Ki", 102400), ("2e9", 2 * 10**9),
])  # fmt: skip
def test_parse_quantity(text, expected):
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("bad", ["16GB", "", "Gi", "-1Gi", "16 gi"])
def test_parse_quantity_rejects(bad):
    with pytest.raises(ValueError, match="not a memory quantity"):
        parse_quantity(bad)


def test_format_bytes():
    assert [format_bytes(x) for x in (512, 1536, 3 * 2**30)] == ["512 B", "1.5 KiB", "3 GiB"]
