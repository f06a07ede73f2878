"""How ``recsys reproduce`` names each difference (the pure comparisons of recsys/reproduce/check.py)."""

from __future__ import annotations

from recsys.reproduce.check import Check, Difference, code_differences, data_differences, library_differences

CODE = {"package_version": "0.1.0", "source_commit": "abc1234567890", "dirty": False,
        "source_sha256": "1" * 64}


def test_the_code_is_named_by_commit_and_dirty_flag_or_by_digest():
    assert code_differences(CODE, dict(CODE)) == []
    moved = {**CODE, "source_commit": "def4567890123", "dirty": True, "source_sha256": "2" * 64}
    assert code_differences(CODE, moved) == ["source commit abc123456789 → def456789012 (dirty)"]
    edited = {**CODE, "dirty": True, "source_sha256": "2" * 64}
    assert code_differences(CODE, edited) == ["source digest 111111111111 → 222222222222 at commit "
                                              "abc123456789 (dirty)"]
    # another commit with the same sources (a docs-only commit) builds the same model
    assert code_differences(CODE, {**CODE, "source_commit": "fff"}) == []
    assert code_differences(CODE, {**CODE, "package_version": "0.2.0"}) == ["recsys 0.1.0 → 0.2.0"]
    assert "not recorded" in code_differences(None, CODE)[0]


def test_libraries_and_data_are_named_one_by_one():
    old = {"python": "3.11.9", "tensorflow": "2.21.0", "numpy": "2.1.0", "recsys": "0.1.0"}
    new = {**old, "tensorflow": "2.20.0", "recsys": "0.2.0"}
    assert library_differences(old, new) == ["tensorflow 2.21.0 → 2.20.0"]
    a = {"spec_sha256": "s", "method": "sha256", "stream_version": 2,
         "shards": {"train/part-0": "x", "train/part-1": "y", "eval/part-0": "z"}}
    b = {**a, "spec_sha256": "t", "stream_version": 3, "shards": {"train/part-0": "x", "train/part-1": "Y",
                                                                  "train/part-2": "w"}}
    assert data_differences(a, dict(a)) == []
    assert data_differences(a, b) == ["feature_spec.json differs", "shard eval/part-0 missing",
                                      "shard train/part-1 sha256 differs",
                                      "shard train/part-2 not in the recorded data",
                                      "stream order version 2 → 3"]


def test_only_the_kinds_not_allowed_refuse():
    diffs = (Difference("data", "shard a sha256 differs"), Difference("workers", "workers 4 → 2"))
    chk = Check("e", {}, None, 2, diffs)  # type: ignore[arg-type]
    assert chk.refused(()) == list(diffs)
    assert chk.refused(("data",)) == [diffs[1]]
    assert chk.refused(("all",)) == []
    assert str(diffs[1]) == "workers: workers 4 → 2"
