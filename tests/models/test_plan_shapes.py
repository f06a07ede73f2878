"""The cost model's tables and dense parameter count equal those of the built RankingModel."""

from __future__ import annotations

import pytest

from recsys import config as cfg
from recsys.models import RankingModel
from recsys.planning import plan_experiment


@pytest.mark.parametrize("overrides", [
    ["model.embedding_dim=8", "model.cross_low_rank=0"],
    ["model.embedding_dim=8", "model.embedding_dims={C1: 4, M1: 4}", "model.cross_low_rank=3"],
    ["model.embedding_dim=8", "model.interaction=dot", "model.bottom_mlp=[16,8]"],
])  # fmt: skip
def test_plan_matches_built_model(tiny_data, overrides):
    root, spec = tiny_data
    exp = cfg.load("synthetic_small", [f"data.spec_dir={root}", *overrides])
    plan = plan_experiment(exp, spec)
    model = RankingModel(spec, exp.model)
    model.build_from_spec()
    tables = {v.name.split("/")[-1].split(":")[0]: tuple(v.shape) for v in model.embedding.tables}
    assert tables == {t.name: (t.rows, t.dim) for t in plan.tables}
    table_ids = {id(v) for v in model.embedding.tables}
    dense = sum(v.shape.num_elements() for v in model.trainable_variables if id(v) not in table_ids)
    assert dense == plan.dense.rows


def test_plan_of_an_ensemble_counts_every_tower(tiny_data):
    root, spec = tiny_data
    common = [f"data.spec_dir={root}", "model.embedding_dim=8"]
    single = cfg.load("synthetic_small", common)
    double = cfg.load("synthetic_small", [*common, "model.ensemble=2"])
    one, two = plan_experiment(single, spec), plan_experiment(double, spec)
    model = RankingModel(spec, double.model)
    model.build_from_spec()
    tables = [v for m in model.members for v in m.embedding.tables]
    assert sum(v.shape.num_elements() for v in tables) == sum(t.rows * t.dim for t in two.tables)
    table_ids = {id(v) for v in tables}
    dense = sum(v.shape.num_elements() for v in model.trainable_variables if id(v) not in table_ids)
    assert dense == two.dense.rows == 2 * one.dense.rows
    assert [t.rows for t in two.tables] == [2 * t.rows for t in one.tables]
