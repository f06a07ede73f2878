"""The ranking task's loss and training metrics, correct under any ``tf.distribute`` strategy.

The loss is a per-example binary cross-entropy SUM on each replica divided by the global batch, so
the gradients summed over replicas are those of the global mean. Training metrics are updated with
the all-gathered global batch on every replica, so every replica's metric equals the global one and
the loop reads replica 0's. Eval metrics are computed exactly in NumPy (:mod:`recsys.train.evaluate`).
"""

from __future__ import annotations

from recsys.compat import keras, tf
from recsys.models.metrics import ranking_metrics


def labels_2d(labels: tf.Tensor) -> tf.Tensor:
    """Labels as (B, 1), never (B,): with (B,) Keras averages over the batch before the loss."""
    return tf.reshape(tf.cast(labels, tf.float32), [-1, 1])


def _gather(ctx: tf.distribute.ReplicaContext, x: tf.Tensor) -> tf.Tensor:
    """All-gather rows of different counts per replica (collectives need equal shapes: pad)."""
    if x.shape[0] is not None:  # a static batch (training, drop_remainder): same everywhere
        return ctx.all_gather(x, axis=0)
    n = tf.shape(x)[0]
    counts = ctx.all_gather(tf.reshape(n, [1]), axis=0)  # [replicas]
    longest = tf.reduce_max(counts)
    padded = tf.pad(x, [[0, longest - n], [0, 0]])
    gathered = ctx.all_gather(padded, axis=0)
    return tf.boolean_mask(gathered, tf.reshape(tf.sequence_mask(counts, longest), [-1]))


class RankingObjective(tf.Module):
    """Loss, training metrics and gradient form of one training run (build it in the strategy scope,
    so the metric variables are per replica; it is part of the training state in the checkpoint)."""

    def __init__(self, dense_grad_max_elements: int = 0, distill_weight: float = 0.0) -> None:
        super().__init__(name="objective")
        self.dense_grad_max_elements = dense_grad_max_elements
        self.distill_weight = float(distill_weight)  # the weight of the teacher term (0: none)
        self.bce = keras.losses.BinaryCrossentropy(reduction=keras.losses.Reduction.SUM)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.task_metrics = ranking_metrics()

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        """The running metrics in report order: loss, auc, logloss, calibration."""
        return [self.loss_tracker, *self.task_metrics]

    def _update(self, labels: tf.Tensor, probs: tf.Tensor) -> None:
        for m in self.task_metrics:
            m.update_state(labels, probs)

    def _sum(self, labels: tf.Tensor, probs: tf.Tensor, teacher: tf.Tensor | None) -> tf.Tensor:
        """The per-example loss summed over the rows: BCE(label, p), or with a teacher's probabilities
        (Jiang et al. 2022, churn reduction via distillation) (1 - w) BCE(label, p) + w BCE(p_teacher, p)."""
        if teacher is None:
            return self.bce(labels, probs)
        w = self.distill_weight
        return (1.0 - w) * self.bce(labels, probs) + w * self.bce(teacher, probs)

    def batch_loss(self, model: keras.Model, labels: tf.Tensor, probs: tf.Tensor,
                   teacher: tf.Tensor | None = None) -> tf.Tensor:
        """Per-example SUM on this replica / global batch, plus the model's scaled regularization;
        ``teacher``: the frozen parent's probabilities on the same rows (distillation)."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        total = self._sum(labels, probs, teacher)
        global_batch = tf.cast(tf.shape(labels)[0] * replicas, total.dtype)
        loss = tf.math.divide_no_nan(total, global_batch)
        if model.losses:
            loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        return loss

    def record(self, model: keras.Model, labels: tf.Tensor, probs: tf.Tensor, loss: tf.Tensor,
               with_task_metrics: bool, teacher: tf.Tensor | None = None) -> None:
        """Update the loss tracker and (optionally) the task metrics with the *global* batch."""
        ctx = tf.distribute.get_replica_context()
        probs = tf.stop_gradient(probs)
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            if with_task_metrics:  # one gather gives the metrics and the global mean loss
                columns = [labels, probs] + ([] if teacher is None else [teacher])
                both = _gather(ctx, tf.concat(columns, axis=1))
                labels, probs = both[:, :1], both[:, 1:2]
                total = self._sum(labels, probs, None if teacher is None else both[:, 2:])
                self._update(labels, probs)
                loss = tf.math.divide_no_nan(total, tf.cast(tf.shape(labels)[0], total.dtype))
                if model.losses:
                    loss += tf.add_n(model.losses)
                self.loss_tracker.update_state(loss)
                return
            loss = ctx.all_reduce(tf.distribute.ReduceOp.SUM, loss)
        self.loss_tracker.update_state(loss)
        if with_task_metrics:
            self._update(labels, probs)

    def densify(self, grads: list, variables: list) -> list:
        """Small tables' sparse gradients as dense tensors (one all-reduce instead of gathers)."""
        limit = self.dense_grad_max_elements
        return [
            tf.convert_to_tensor(g)
            if isinstance(g, tf.IndexedSlices) and v.shape.num_elements() <= limit
            else g
            for g, v in zip(grads, variables, strict=True)
        ]
