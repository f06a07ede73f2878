"""The stream's row gather (the block shuffle, worker slices, the validation split) gives exactly
``tf.gather``'s values for every kind of column, strings through ``gather_nd`` included."""

from __future__ import annotations

import numpy as np

from recsys.compat import tf
from recsys.data.stream import _gather, _select


def _chunk() -> dict:
    rng = np.random.default_rng(7)
    n = 300
    words = np.array([b"", b"a", b"bb", b"x" * 40, b"\xc3\xa9", b"long value " * 9], dtype=object)
    return {
        "c": tf.constant(words[rng.integers(0, len(words), n)]),
        "f": tf.constant(np.where(rng.random(n) < 0.1, np.nan, rng.random(n)).astype(np.float32)),
        "i": tf.constant(rng.integers(-(1 << 62), 1 << 62, n)),
        "m": tf.RaggedTensor.from_row_lengths(tf.constant(words[rng.integers(0, len(words), 450)]),
                                              tf.constant(np.repeat([0, 1, 2, 3, 0, 3], 50), tf.int64)),
    }


def _same(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for k in want:
        if isinstance(want[k], tf.RaggedTensor):
            assert got[k].to_list() == want[k].to_list(), k
        elif want[k].dtype == tf.string:
            assert got[k].dtype == tf.string and got[k].numpy().tolist() == want[k].numpy().tolist(), k
        else:  # bit for bit (NaNs included)
            assert got[k].dtype == want[k].dtype, k
            assert got[k].numpy().tobytes() == want[k].numpy().tobytes(), k


def test_gather_is_tf_gather_for_every_column_kind():
    chunk = _chunk()
    order = tf.random.experimental.stateless_shuffle(tf.range(300, dtype=tf.int64), seed=[3, 4])
    want = {k: tf.gather(v, order) for k, v in chunk.items()}
    _same(_gather(chunk, order), want)
    assert _gather(chunk, order)["c"].numpy().tolist() != chunk["c"].numpy().tolist()  # it did permute
    empty = tf.zeros([0], tf.int64)
    assert all(int(tf.shape(v)[0]) == 0 for v in _gather(chunk, empty).values())


def test_select_is_boolean_mask_for_every_column_kind():
    chunk = _chunk()
    mask = tf.constant(np.random.default_rng(1).random(300) < 0.3)
    want = {k: tf.ragged.boolean_mask(v, mask) if isinstance(v, tf.RaggedTensor) else tf.boolean_mask(v, mask)
            for k, v in chunk.items()}
    _same(_select(chunk, mask), want)
    assert 0 < int(tf.shape(_select(chunk, mask)["c"])[0]) < 300
