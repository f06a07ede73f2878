"""Optimizers per variable group (recsys/train/optimizers.py): LazyAdam moves only the rows of a sparse
gradient, the grouped optimizer gives the tables their own optimizer and slots, "same" stays one
Keras optimizer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recsys.compat import keras, tf
from recsys.config.schema import TrainConfig
from recsys.train.optimizers import GroupedOptimizer, LazyAdam, PlainSGD, build_optimizer


def _sparse(rows: list[int], values: np.ndarray, shape: tuple[int, int]) -> tf.IndexedSlices:
    return tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(rows, tf.int64),
                            tf.constant(shape, tf.int64))


def test_lazy_adam_moves_only_the_rows_of_the_batch():
    table = tf.Variable(np.arange(12, dtype=np.float32).reshape(6, 2))
    dense_ref = tf.Variable(table.numpy())
    lazy, adam = LazyAdam(learning_rate=0.1), keras.optimizers.Adam(learning_rate=0.1)
    first = np.array([[1.0, -2.0], [0.5, 0.25]], np.float32)
    lazy.apply_gradients([(_sparse([1, 4], first, (6, 2)), table)])
    full = np.zeros((6, 2), np.float32)
    full[[1, 4]] = first
    adam.apply_gradients([(tf.constant(full), dense_ref)])
    # Step 1: Adam's dense update on the touched rows, bit for bit; the other rows did not move.
    np.testing.assert_array_equal(table.numpy(), dense_ref.numpy())
    assert not np.array_equal(table.numpy()[[1, 4]], np.arange(12, dtype=np.float32).reshape(6, 2)[[1, 4]])
    # Step 2 touches row 0 only: rows 1 and 4 keep their weights and moments (Adam would move them).
    before = table.numpy().copy()
    m_before = lazy.variables[1].numpy().copy()
    lazy.apply_gradients([(_sparse([0, 0], np.ones((2, 2), np.float32), (6, 2)), table)])
    after = table.numpy()
    np.testing.assert_array_equal(after[1:], before[1:])
    np.testing.assert_array_equal(lazy.variables[1].numpy()[1:], m_before[1:])
    assert (after[0] < before[0]).all()
    assert int(lazy.iterations) == 2


def test_lazy_adam_takes_adams_dense_update_for_dense_gradients():
    a, b = tf.Variable([[1.0, 2.0], [3.0, 4.0]]), tf.Variable([[1.0, 2.0], [3.0, 4.0]])
    grad = tf.constant([[0.5, 0.0], [-1.0, 2.0]])
    for _ in range(3):
        LazyAdam(learning_rate=0.05).apply_gradients([(grad, a)])
        keras.optimizers.Adam(learning_rate=0.05).apply_gradients([(grad, b)])
    np.testing.assert_array_equal(a.numpy(), b.numpy())


class _Model(keras.Model):
    """A table (the layer the optimizer looks for is ``model.embedding``) and a dense kernel."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = keras.layers.Layer()
        self.embedding.tables = [self.embedding.add_weight(name="table_d2", shape=(5, 2),
                                                           initializer="ones")]
        self.kernel = self.add_weight(name="kernel", shape=(2,), initializer="ones")


@pytest.mark.parametrize("name,cls,slots", [("adagrad", keras.optimizers.Adagrad, 1),
                                            ("sgd", PlainSGD, 0),
                                            ("lazy_adam", LazyAdam, 2)])
def test_the_tables_get_their_own_optimizer_and_slots(name, cls, slots):
    model = _Model()
    train = dataclasses.replace(TrainConfig(), embedding_optimizer=name, embedding_learning_rate=0.5)
    opt = build_optimizer(train, model)
    assert isinstance(opt, GroupedOptimizer) and type(opt.embedding) is cls
    assert type(opt.dense) is keras.optimizers.Adam
    assert float(opt.embedding.learning_rate) == 0.5 and float(opt.dense.learning_rate) == np.float32(1e-3)
    table_slots = [v for v in opt.embedding.variables if tuple(v.shape) == (5, 2)]
    assert len(table_slots) == slots
    assert [tuple(v.shape) for v in opt.dense.variables if v.shape.rank] == [(2,), (2,)]  # Adam: m, v
    grads = [(_sparse([3], np.ones((1, 2), np.float32), (5, 2)), model.embedding.tables[0]),
             (tf.ones([2]), model.kernel)]
    opt.apply_gradients(grads)
    opt.apply_gradients(grads)
    assert int(opt.iterations) == 2 and int(opt.embedding.iterations) == 2
    table = model.embedding.tables[0].numpy()
    np.testing.assert_array_equal(np.delete(table, 3, axis=0), np.ones((4, 2), np.float32))
    assert (table[3] < 1).all() and (model.kernel.numpy() < 1).all()


def test_same_is_one_keras_optimizer_for_every_variable():
    model = _Model()
    opt = build_optimizer(TrainConfig(optimizer="adagrad"), model)
    assert type(opt) is keras.optimizers.Adagrad
    assert len([v for v in opt.variables if v.shape.rank]) == 2  # one accumulator per variable


def test_the_grouped_slots_are_in_the_checkpoint(tmp_path):
    model = _Model()
    train = dataclasses.replace(TrainConfig(), embedding_optimizer="adagrad")
    opt = build_optimizer(train, model)
    opt.apply_gradients([(_sparse([1], np.ones((1, 2), np.float32), (5, 2)), model.embedding.tables[0]),
                         (tf.ones([2]), model.kernel)])
    path = tf.train.Checkpoint(model=model, optimizer=opt).save(str(tmp_path / "ckpt"))
    again = _Model()
    fresh = build_optimizer(train, again)
    tf.train.Checkpoint(model=again, optimizer=fresh).restore(path).assert_consumed()
    for saved, restored in zip(opt.variables, fresh.variables, strict=True):
        np.testing.assert_array_equal(saved.numpy(), restored.numpy())
    assert int(fresh.iterations) == 1 and int(fresh.embedding.iterations) == 1


def test_warmup_ramps_the_rate_linearly_then_holds_it():
    model = _Model()
    train = dataclasses.replace(TrainConfig(optimizer="sgd", learning_rate=0.1, warmup_steps=4),
                                embedding_optimizer="sgd")
    opt = build_optimizer(train, model)
    kernel, table = [], []
    for _ in range(6):
        before_k, before_t = model.kernel.numpy().copy(), model.embedding.tables[0].numpy()[2].copy()
        opt.apply_gradients([(_sparse([2], np.ones((1, 2), np.float32), (5, 2)), model.embedding.tables[0]),
                             (tf.ones([2]), model.kernel)])
        kernel.append(float((before_k - model.kernel.numpy())[0]))
        table.append(float((before_t - model.embedding.tables[0].numpy()[2])[0]))
    # Step i moves by 0.1 * min(1, (i + 1) / 4) with gradient 1: dense layers and tables alike.
    np.testing.assert_allclose(kernel, [0.025, 0.05, 0.075, 0.1, 0.1, 0.1], rtol=1e-5)
    np.testing.assert_allclose(table, kernel, rtol=1e-5)


def test_no_warmup_is_the_constant_rate_and_a_negative_one_is_refused():
    opt = build_optimizer(TrainConfig(learning_rate=0.01), _Model())
    assert isinstance(opt.learning_rate, tf.Variable) and float(opt.learning_rate) == np.float32(0.01)
    assert TrainConfig().warmup_steps == 0
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(warmup_steps=-1)
