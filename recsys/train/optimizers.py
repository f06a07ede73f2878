"""The training optimizer: ``train.optimizer`` for every variable, or one optimizer per variable group
(``train.embedding_optimizer``): the embedding tables with Adagrad, SGD or a lazy Adam, the dense
layers with ``train.optimizer``, as Model Garden's DLRM and DCN-v2 do with TFRS's CompositeOptimizer.

Why: Keras's Adam decays both moments of *every* row at every step, even for a sparse gradient, so a
step costs in proportion to the table's size. Adagrad and SGD update only the rows of a sparse
gradient, and :class:`LazyAdam` does too. (TFRS 0.7.7's ``CompositeOptimizer`` wraps only the legacy
Keras optimizers, whose checkpoints and numbers differ from the ones trained here, so
:class:`GroupedOptimizer` is the small composite built on the same optimizers as the "same" path.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from recsys.compat import keras, tf
from recsys.config.schema import TrainConfig

OPTIMIZERS = {"adam": keras.optimizers.Adam, "adagrad": keras.optimizers.Adagrad,
              "sgd": keras.optimizers.SGD}


class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """``rate * min(1, (step + 1) / warmup_steps)``: a linear ramp to ``rate`` over the first
    ``warmup_steps`` steps (``train.warmup_steps``), then constant. A pure function of the optimizer's
    step counter, which the checkpoint holds, so a resumed run continues on the same ramp."""

    def __init__(self, rate: float, warmup_steps: int) -> None:
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1 (got {warmup_steps}); 0 is no schedule")
        self.rate, self.warmup_steps = float(rate), int(warmup_steps)

    def __call__(self, step: Any) -> tf.Tensor:
        ramp = (tf.cast(step, tf.float32) + 1.0) / float(self.warmup_steps)
        return self.rate * tf.minimum(1.0, ramp)

    def get_config(self) -> dict:
        return {"rate": self.rate, "warmup_steps": self.warmup_steps}


def learning_rate(rate: float, warmup_steps: int) -> Any:
    """The optimizer's ``learning_rate`` argument: the constant ``rate`` (no warm-up) or its ramp."""
    return LinearWarmup(rate, warmup_steps) if warmup_steps else rate


class LazyAdam(keras.optimizers.Adam):
    """Adam whose sparse update reads and writes only the rows in the gradient: their moments and
    weights move as Adam's would, every other row (moments included) stays as it is. Dense gradients
    (small tables, see ``train.dense_grad_max_elements``, and dense layers) get Adam's dense update.
    The slots are Adam's own (``m``, ``v``), so a checkpoint has Adam's layout."""

    def __init__(self, learning_rate: float = 1e-3, name: str = "LazyAdam", **kwargs: Any) -> None:
        if kwargs.get("amsgrad"):
            raise ValueError("LazyAdam has no amsgrad variant")
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)

    def update_step(self, gradient: Any, variable: Any) -> None:
        if not isinstance(gradient, tf.IndexedSlices):
            super().update_step(gradient, variable)
            return
        # apply_gradients deduplicated the indices: each row appears once.
        dtype = variable.dtype
        lr = tf.cast(self.learning_rate, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        epsilon = self.epsilon * tf.sqrt(1 - tf.pow(beta_2, step)) if self.adaptive_epsilon else self.epsilon
        index = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[index], self._velocities[index]
        rows, values = gradient.indices, gradient.values
        m_rows = tf.gather(m, rows)
        m_rows += (values - m_rows) * (1 - self.beta_1)  # Python floats, as in Adam's own update
        v_rows = tf.gather(v, rows)
        v_rows += (tf.square(values) - v_rows) * (1 - self.beta_2)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(m_rows * alpha / (tf.sqrt(v_rows) + epsilon), rows))


class PlainSGD(keras.optimizers.Optimizer):
    """SGD without momentum and without slots: ``w -= lr * g``, on the gradient's rows only when it is
    sparse. (Keras's SGD keeps a momentum slot even at momentum 0 and adds it to every row.)"""

    def __init__(self, learning_rate: float = 0.01, name: str = "PlainSGD", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self._learning_rate = self._build_learning_rate(learning_rate)

    def update_step(self, gradient: Any, variable: Any) -> None:
        lr = tf.cast(self.learning_rate, variable.dtype)
        if isinstance(gradient, tf.IndexedSlices):
            variable.scatter_sub(tf.IndexedSlices(gradient.values * lr, gradient.indices))
        else:
            variable.assign_sub(gradient * lr)

    def get_config(self) -> dict:
        return {**super().get_config(), "learning_rate": self._serialize_hyperparameter(self._learning_rate)}


EMBEDDING_OPTIMIZERS = {"adagrad": keras.optimizers.Adagrad, "sgd": PlainSGD,
                        "lazy_adam": LazyAdam}


class GroupedOptimizer(tf.Module):
    """Two Keras optimizers over disjoint variable groups: ``embedding`` for the embedding tables,
    ``dense`` for every other variable. Each keeps its own slots and step counter (both advance once
    per step); the checkpoint holds both. ``iterations`` is the dense optimizer's, the global step."""

    def __init__(self, dense: keras.optimizers.Optimizer, embedding: keras.optimizers.Optimizer,
                 embedding_variables: Iterable[tf.Variable]) -> None:
        super().__init__(name="grouped_optimizer")
        self.dense, self.embedding = dense, embedding
        self._embedding_refs = frozenset(v.ref() for v in embedding_variables)

    @property
    def iterations(self) -> tf.Variable:
        return self.dense.iterations

    @property
    def optimizers(self) -> list[keras.optimizers.Optimizer]:
        return [self.dense, self.embedding]

    @property
    def variables(self) -> list[tf.Variable]:
        return [*self.dense.variables, *self.embedding.variables]

    def split(self, pairs: Iterable[tuple[Any, Any]]) -> tuple[list, list]:
        """(gradient, variable) pairs -> (dense pairs, embedding pairs), in their order."""
        dense: list[tuple[Any, Any]] = []
        embedding: list[tuple[Any, Any]] = []
        for grad, var in pairs:
            (embedding if var.ref() in self._embedding_refs else dense).append((grad, var))
        return dense, embedding

    def build(self, variables: list[tf.Variable]) -> None:
        dense, embedding = self.split((None, v) for v in variables)
        self.dense.build([v for _, v in dense])
        self.embedding.build([v for _, v in embedding])

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Any]], **kwargs: Any) -> None:
        dense, embedding = self.split(grads_and_vars)
        self.dense.apply_gradients(dense, **kwargs)
        self.embedding.apply_gradients(embedding, **kwargs)


def embedding_tables(model: Any) -> list[tf.Variable]:
    """The model's embedding tables (empty when it has no categorical features)."""
    layer = getattr(model, "embedding", None)
    return list(layer.tables) if layer is not None else []


def build_optimizer(train: TrainConfig, model: Any) -> Any:
    """The configured optimizer with its slots built, so a restore fills every variable. With
    ``embedding_optimizer="same"`` (or a model without tables) it is one Keras optimizer, as before.
    ``train.warmup_steps`` > 0 ramps every optimizer's rate linearly (:class:`LinearWarmup`)."""
    dense = OPTIMIZERS[train.optimizer](learning_rate=learning_rate(train.learning_rate, train.warmup_steps))
    tables = embedding_tables(model)
    if train.embedding_optimizer == "same" or not tables:
        optimizer: Any = dense
    else:
        rate = train.embedding_learning_rate or train.learning_rate
        embedding = EMBEDDING_OPTIMIZERS[train.embedding_optimizer](
            learning_rate=learning_rate(rate, train.warmup_steps))
        optimizer = GroupedOptimizer(dense, embedding, tables)
    optimizer.build(model.trainable_variables)
    return optimizer
