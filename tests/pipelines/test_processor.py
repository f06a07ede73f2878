"""BatchProcessor edge cases that the end-to-end fixtures do not reach."""

from __future__ import annotations

from pipelines.processor import BatchProcessor, split_is_eval
from pipelines.schema import schema_from_dict
from recsys.compat import tf

SCHEMA = {
    "delimiter": ",",
    "columns": [
        {"name": "c", "kind": "categorical"},
        {"name": "x", "kind": "numeric", "log1p": True},
        {"name": "m", "kind": "multi_categorical", "separator": "|"},
        {"name": "y", "kind": "label"},
    ],
    "label": {"column": "y"},
    "split": {"eval_fraction": 0.0},
}


def _parse(example: bytes) -> dict:
    ex = tf.train.Example.FromString(example)
    return {k: list(getattr(v, v.WhichOneof("kind")).value) for k, v in ex.features.feature.items()}


def test_long_values_bad_tokens_across_batches_and_stats():
    proc = BatchProcessor(schema_from_dict(SCHEMA))
    long = b"v" * 300
    first = proc.process([b"a,1,p|q,1", long + b",-0.5,,0", b"a,oops,,1"])
    assert [(e.index, e.code) for e in first.errors] == [(2, "bad_numeric")]
    assert [_parse(e) for e in first.examples] == [
        {"label": [1.0], "c": [b"a"], "x": [1.0], "m": [b"p", b"q"]},
        {"label": [0.0], "c": [long], "x": [-0.5], "m": []},
    ]
    # The same bad token in a later batch is still caught (it is cached as bad), and x <= -1
    # cannot go through log1p, so it is rejected too.
    second = proc.process([b"b,oops,,1", b"b,-1,,1", b"b,,x,1"])
    assert [(e.index, e.code) for e in second.errors] == [(0, "bad_numeric"), (1, "bad_numeric")]
    assert _parse(second.examples[0]) == {"label": [1.0], "c": [b"b"], "m": [b"x"]}
    x = proc.accs["x"]
    assert (x.count, x.missing) == (2, 1)
    assert proc.accs["c"].counts == {b"a": 1, long: 1, b"b": 1}
    assert proc.accs["m"].counts == {b"p": 1, b"q": 1, b"x": 1} and proc.accs["m"].max_values == 2


def test_latin1_input_is_stored_as_utf8():
    proc = BatchProcessor(schema_from_dict(dict(SCHEMA, encoding="latin-1")))
    res = proc.process(["café,1,,1".encode("latin-1")])
    assert not res.errors
    assert _parse(res.examples[0])["c"] == ["café".encode()]


def test_split_hash_is_stable_and_close_to_the_fraction():
    keys = [str(i).encode() for i in range(20_000)]
    a = split_is_eval(keys, 0.2, "s")
    assert (a == split_is_eval(keys, 0.2, "s")).all()
    assert 0.19 < a.mean() < 0.21
    assert (a != split_is_eval(keys, 0.2, "other")).any()
    # A larger fraction only adds keys to eval (monotone in the threshold).
    assert (split_is_eval(keys, 0.3, "s") | ~a).all()


def test_categorical_merge_drops_counts_above_the_hash_threshold():
    from collections import Counter

    from pipelines.stats import CategoricalAcc, build_vocabulary, merge_accs

    parts = [CategoricalAcc(Counter({f"v{i}".encode(): 1 for i in range(j, 30_000, 3)})) for j in range(3)]
    small = merge_accs([CategoricalAcc(Counter({b"a": 3, b"b": 3, b"c": 5}))] * 2, limit=10)
    assert not small.overflowed and small.counts == {b"a": 6, b"b": 6, b"c": 10}
    assert build_vocabulary(small.counts, 1, 2) == [(b"c", 10), (b"a", 6)]
    big = merge_accs(parts, limit=1000)
    assert big.overflowed and not big.counts  # bounded memory: counts dropped
    assert abs(big.cardinality - 30_000) < 0.05 * 30_000  # estimated from the sketch
    again = merge_accs([big, CategoricalAcc(Counter({b"new": 1}))], limit=1000)
    assert again.overflowed and abs(again.cardinality - 30_000) < 0.05 * 30_000
    exact = merge_accs(parts, limit=0)
    assert exact.cardinality == 30_000 and not exact.overflowed
