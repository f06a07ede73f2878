"""Golden numbers for the model pieces: fused-table offsets, pooling, cross and dot interactions."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.compat import keras, tf
from recsys.models.embedding import FusedEmbedding, plan_tables
from recsys.models.interaction import CrossStack, DotInteraction
from recsys.models.metrics import Calibration


class RowIndex(keras.initializers.Initializer):
    """table[r, c] = r + c / 10: every looked-up row says which row it is."""

    def __call__(self, shape, dtype=None, **kwargs):
        rows, cols = shape
        return tf.constant(np.arange(rows)[:, None] + np.arange(cols)[None, :] / 10, tf.float32)


def test_plan_tables_groups_by_dim_with_offsets():
    groups = plan_tables([("a", 5, 4, 0), ("m", 7, 4, 3), ("b", 3, 8, 0), ("c", 2, 4, 0)])
    assert list(groups) == [4, 8]
    assert [(s.name, s.offset, s.num_ids, s.multi) for s in groups[4]] == [
        ("a", 0, 5, False),
        ("c", 5, 2, False),
        ("m", 7, 7, True),
    ]
    assert [(s.name, s.offset) for s in groups[8]] == [("b", 0)]


def test_fused_embedding_looks_up_offset_rows_and_mean_pools():
    layer = FusedEmbedding(
        [("a", 5, 2, 0), ("c", 2, 2, 0), ("m", 7, 2, 3), ("b", 3, 3, 0)], embeddings_initializer=RowIndex()
    )
    ids = {
        "a": tf.constant([4, 0]),
        "c": tf.constant([1, 0]),
        "b": tf.constant([2, 1]),
        "m": tf.ragged.constant([[0, 6], []], dtype=tf.int64),
    }
    d2, d3 = layer(ids)
    assert [t.shape for t in layer.tables] == [(14, 2), (3, 3)]  # 5+2+7 rows, 3 rows
    # dim 2: a at offset 0, c at 5, m at 7 (mean of rows 7 and 13 = 10; empty row -> zeros)
    np.testing.assert_allclose(
        d2.numpy(), [[[4, 4.1], [6, 6.1], [10, 10.1]], [[0, 0.1], [5, 5.1], [0, 0]]], rtol=1e-6
    )
    np.testing.assert_allclose(d3.numpy()[:, 0, 0], [2, 1])


def test_fused_embedding_truncates_long_multi_rows():
    layer = FusedEmbedding([("m", 10, 1, 2)], embeddings_initializer=RowIndex())
    (out,) = layer({"m": tf.ragged.constant([[1, 3, 9]], dtype=tf.int64)})
    np.testing.assert_allclose(out.numpy().ravel(), [2.0])  # mean of rows 1 and 3 only


@pytest.mark.parametrize("low_rank", [0, 1])
def test_cross_layer_constant_init(low_rank):
    cross = CrossStack(1, low_rank, kernel_initializer="ones", bias_initializer="zeros")
    x0 = tf.constant([[1.0, 2.0]])
    # x1 = x0 * (W x0 + b) + x0 with W = ones (or U V^T = ones): [1,2] * [3,3] + [1,2]
    np.testing.assert_allclose(cross(x0).numpy(), [[4.0, 8.0]])


def test_two_cross_layers_constant_init():
    cross = CrossStack(2, 0, kernel_initializer="ones", bias_initializer="zeros")
    # layer 2: x0 * (W x1) + x1 = [1,2] * [12,12] + [4,8]
    np.testing.assert_allclose(cross(tf.constant([[1.0, 2.0]])).numpy(), [[16.0, 32.0]])


def test_dot_interaction_upper_triangle():
    x = tf.constant([[[1.0, 0.0], [0.0, 1.0], [2.0, 3.0]]])
    np.testing.assert_allclose(DotInteraction()(x).numpy(), [[0.0, 2.0, 3.0]])


def test_calibration_metric():
    m = Calibration()
    m.update_state(tf.constant([[1.0], [0.0], [1.0], [0.0]]), tf.constant([[0.5], [0.5], [0.2], [0.2]]))
    assert m.result().numpy() == pytest.approx(0.7)
