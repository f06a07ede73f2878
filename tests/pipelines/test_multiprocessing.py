"""Two worker processes give the same shards, vocabularies and spec as one in-memory worker."""

from __future__ import annotations

from collections import Counter

import pytest

from pipelines import feature_spec
from pipelines.config import PreprocessConfig, SyntheticParams
from pipelines.sources.criteo import criteo_schema


def _key(ex: dict) -> tuple:
    return tuple(sorted((k, tuple(v)) for k, v in ex.items()))


@pytest.mark.slow
def test_multi_processing_matches_in_memory(tmp_path, run_config, read_examples):
    outs = {}
    for mode, args in {
        "in_memory": [],
        "multi": ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
    }.items():
        out = tmp_path / mode
        cfg = PreprocessConfig(
            source="synthetic",
            output=str(out),
            schema=criteo_schema(),
            synthetic=SyntheticParams(rows=6_000, seed=11, chunk_rows=1_000),
            hash_threshold=500,
        )
        summary = run_config(cfg, *args)
        assert summary.stage_counts["0_chunks"] == 6
        outs[mode] = out
    a, b = (feature_spec.load(str(o)) for o in outs.values())
    assert a.counts == b.counts and a.counts.read == 6_000
    for fa, fb in zip(a.features, b.features, strict=True):
        assert (fa.name, fa.encoding, fa.vocabulary_size, fa.cardinality, fa.hash_buckets) == (
            fb.name,
            fb.encoding,
            fb.vocabulary_size,
            fb.cardinality,
            fb.hash_buckets,
        )
        # exactly: the statistics merge exactly, whatever order the workers' accumulators meet in
        assert fa.stats == fb.stats
        if fa.vocabulary_file:
            assert (outs["in_memory"] / fa.vocabulary_file).read_text() == (
                outs["multi"] / fb.vocabulary_file
            ).read_text()
    for split in ("train", "eval"):
        ea, eb = (Counter(map(_key, read_examples(o, split))) for o in outs.values())
        assert ea == eb and sum(ea.values()) > 0


def test_bundle_based_direct_runner_gives_the_same_result(tmp_path, run_config, read_examples):
    """Another runner, same pipeline code: the output must not depend on the runner."""
    outs = []
    for runner in ("DirectRunner", "BundleBasedDirectRunner"):
        out = tmp_path / runner
        cfg = PreprocessConfig(
            source="synthetic",
            output=str(out),
            schema=criteo_schema(),
            synthetic=SyntheticParams(rows=3_000, seed=4, chunk_rows=1_000),
        )
        run_config(cfg, f"--runner={runner}")
        outs.append(out)
    a, b = (feature_spec.load(str(o)) for o in outs)
    assert a.counts == b.counts and a.counts.read == 3_000
    assert [f.vocabulary_size for f in a.features] == [f.vocabulary_size for f in b.features]
    assert (outs[0] / "vocab/C1.txt").read_text() == (outs[1] / "vocab/C1.txt").read_text()
    for split in ("train", "eval"):
        assert Counter(map(_key, read_examples(outs[0], split))) == Counter(
            map(_key, read_examples(outs[1], split))
        )
