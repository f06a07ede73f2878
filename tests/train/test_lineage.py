"""Lineage on real exports: ``recsys compare`` says which version is the other's parent, ancestor or
distillation teacher, following the fingerprints' parent entries on disk."""

from __future__ import annotations

import shutil

from recsys.repro.compare import compare, format_report
from recsys.train.trainer import train
from tests.train.conftest import exp


def test_compare_follows_the_chain_of_parents(parent, tmp_path):
    data = parent["data"]
    child = train(exp(data, f"train.warm_start_from={parent['export']}"), str(tmp_path / "v2"))
    grandchild = train(exp(data, f"train.warm_start_from={child.model_dir}",
                           f"train.distill_from={parent['run']}", "train.distill_weight=0.5"),
                       str(tmp_path / "v3"))
    v1, v2, v3 = parent["export"], child.export_path, grandchild.export_path

    diff = compare(v2, v1, data)
    assert diff["lineage"] == {"relation": "parent", "generations": 1,
                               "line": "B is A's parent (A was warm-started from it)"}
    assert "lineage: B is A's parent" in format_report(diff)
    assert compare(v1, v2, data)["lineage"]["relation"] == "child"
    # v3 names v2's run dir as its parent; v2's fingerprint names v1: two generations. v3 was also
    # distilled from v1, and a teacher is named first.
    assert compare(v3, v2, data)["lineage"]["relation"] == "parent"
    assert compare(v3, v1, data)["lineage"]["line"] == "B is A's distillation teacher"
    unrelated = train(exp(data, "determinism.seed=3"), str(tmp_path / "other"))
    assert compare(v3, unrelated.export_path, data)["lineage"]["relation"] == "none"
    # A copied export is the same version (matched by weights digest, not path).
    copy = str(tmp_path / "copy")
    shutil.copytree(v1, copy)
    assert compare(v2, copy, data)["lineage"]["relation"] == "parent"
    # The chain breaks where a directory is gone: v2's run dir holds the link from v3 to v1.
    no_teacher = train(exp(data, f"train.warm_start_from={child.model_dir}"), str(tmp_path / "v3b"))
    assert compare(no_teacher.export_path, v1, data)["lineage"]["line"] == \
        "B is A's ancestor, 2 generations back"
    shutil.rmtree(child.model_dir)
    assert compare(no_teacher.export_path, v1, data)["lineage"]["relation"] == "none"
