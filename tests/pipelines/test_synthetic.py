"""The synthetic Criteo-layout source: deterministic, Zipf-skewed, learnable labels."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from pipelines import feature_spec
from pipelines.config import PreprocessConfig, SyntheticParams
from pipelines.sources.criteo import criteo_schema
from pipelines.sources.synthetic import BLOCK_ROWS, SyntheticCriteo


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    pos = label.sum()
    return float((ranks[label == 1].sum() - pos * (pos + 1) / 2) / (pos * (len(label) - pos)))


def test_rows_do_not_depend_on_chunking():
    g = SyntheticCriteo(seed=3)
    whole = g.lines(0, BLOCK_ROWS + 500)
    parts = g.lines(0, 7) + g.lines(7, BLOCK_ROWS - 3) + g.lines(BLOCK_ROWS - 3, BLOCK_ROWS + 500)
    assert parts == whole
    assert SyntheticCriteo(seed=3).lines(100, 110) == whole[100:110]
    assert SyntheticCriteo(seed=4).lines(0, 10) != whole[:10]


def test_layout_skew_and_learnable_labels():
    g = SyntheticCriteo(seed=0)
    lines, prob = g.block(0)
    rows = [ln.split(b"\t") for ln in lines]
    assert {len(r) for r in rows} == {40}
    labels = np.array([int(r[0]) for r in rows])
    assert 0.2 <= labels.mean() <= 0.3
    # The teacher's probabilities separate the classes (Bayes AUC ~0.8): a model can learn them.
    assert 0.75 <= _auc(prob, labels) <= 0.9
    # Integers parse (missing = empty), categoricals are 8-hex ids with a Zipf head.
    for j in range(1, 14):
        assert all(v == b"" or int(v) >= -1 for v in (r[j] for r in rows))
    c3 = Counter(r[16] for r in rows)
    top = c3.most_common(2)
    assert all(len(v) == 8 for v in c3)
    assert top[0][1] > 1.5 * top[1][1] > 0  # rank-1 value is clearly the most frequent
    assert len(c3) > 1000  # ... and there is a long tail
    # Learnable without the teacher: one feature's per-value click rate already ranks rows.
    col = [r[14] for r in rows]  # C1
    train, test = slice(0, 20_000), slice(20_000, None)
    rate = {}
    for v, y in zip(col[train], labels[train], strict=True):
        n, s = rate.get(v, (0, 0))
        rate[v] = (n + 1, s + y)
    score = np.array([(rate.get(v, (0, 0))[1] + 1) / (rate.get(v, (0, 0))[0] + 4) for v in col[test]])
    assert _auc(score, labels[test]) > 0.55


def test_bad_cardinalities_are_rejected():
    with pytest.raises(ValueError, match="26 cardinalities"):
        SyntheticCriteo(cardinalities=(10, 10))


def test_synthetic_source_end_to_end(tmp_path, run_config, read_examples):
    out = tmp_path / "out"
    cfg = PreprocessConfig(
        source="synthetic",
        output=str(out),
        schema=criteo_schema(name="synthetic"),
        synthetic=SyntheticParams(rows=12_000, seed=7, chunk_rows=5_000),
        hash_threshold=2_000,
        min_frequency=2,
    )
    summary = run_config(cfg)
    spec = feature_spec.load(str(out))
    assert spec.dataset == "synthetic"
    c = spec.counts
    assert c.read == 12_000 and c.dead_lettered == 0
    assert c.written_train + c.written_eval == 12_000
    assert 0.07 < c.written_eval / c.read < 0.13
    assert spec.data.num_train_shards == spec.data.num_eval_shards == 3
    assert summary.stage_counts["0_chunks"] == 3
    kinds = Counter(f.kind for f in spec.features)
    assert kinds == {"numeric": 13, "categorical": 26}
    i1 = spec.feature("I1")
    assert i1.transform == feature_spec.NumericTransform(clip_min=0.0, log1p=True)
    assert i1.stats.missing > 0 and i1.stats.count + i1.stats.missing == c.written_train
    c9 = spec.feature("C9")  # cardinality 3 -> vocabulary
    assert c9.encoding == "vocabulary" and c9.vocabulary_size <= 3
    c3 = spec.feature("C3")  # cardinality 100000 -> more than 2000 seen -> hashed
    assert c3.encoding == "hash" and c3.cardinality > 2_000 and c3.hash_buckets == 2_000

    # The records, train and eval together, are exactly the generator's rows.
    def canon_raw(r):
        return (
            float(r[0]),
            tuple(float(np.float32(float(v))) if v else None for v in r[1:14]),
            tuple(v.decode() if v else None for v in r[14:]),
        )

    def canon_ex(ex):
        return (
            ex["label"][0],
            tuple(ex[f"I{j}"][0] if f"I{j}" in ex else None for j in range(1, 14)),
            tuple(ex[f"C{j}"][0] if f"C{j}" in ex else None for j in range(1, 27)),
        )

    raw = Counter(canon_raw(ln.split(b"\t")) for ln in SyntheticCriteo(seed=7).lines(0, 12_000))
    examples = read_examples(out, "train")
    assert len(examples) == c.written_train
    got = Counter(canon_ex(e) for e in examples + read_examples(out, "eval"))
    assert got == raw


@pytest.mark.slow
def test_two_runs_write_the_same_bytes(tmp_path):
    """Every output file, the columnar copy included, is byte-identical across two `recsys preprocess`
    processes: the data fingerprint (sha256 of the files training reads) must not change when the same
    data is preprocessed again (protobuf map order differs between processes unless made deterministic)."""
    import hashlib
    import os
    import subprocess
    import sys

    digests = []
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-m", "recsys.cli", "preprocess", "--source=synthetic", "--rows=3000",
                        f"--output={tmp_path / name}"], check=True, capture_output=True, timeout=300,
                       env=dict(os.environ, PYTHONHASHSEED=str(len(digests) + 1)))
        root = tmp_path / name
        digests.append({str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                        for p in sorted(root.rglob("*")) if p.is_file()})
    assert any(k.startswith("train_columnar/") for k in digests[0])
    assert digests[0] == digests[1]
