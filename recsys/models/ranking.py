"""The TFRS ranking model: feature transforms -> embeddings + bottom MLP -> cross/dot -> top MLP.

``model(raw_features)`` returns the click probability ``[B, 1]``; the transforms of the feature spec
run inside the model, so the exported graph takes raw values. Loss and metrics are correct under any
``tf.distribute`` strategy: the loss is a per-example SUM divided by the global batch, and training
metrics are updated with the all-gathered global batch on every replica, so every replica's metric
equals the global one and Keras reports replica 0's value (``distribute_reduction_method="first"``).
Eval metrics are computed exactly in NumPy by the trainer (:mod:`recsys.train.evaluate`).
"""

from __future__ import annotations

from typing import Any

from pipelines.feature_spec import FeatureSpec
from recsys.compat import keras, tf
from recsys.config.schema import ModelConfig
from recsys.models.embedding import FusedEmbedding
from recsys.models.interaction import CrossStack, DotInteraction
from recsys.models.metrics import ranking_metrics
from recsys.models.mlp import MLP
from recsys.models.preprocessing import FeatureTransform, missing_batch
from recsys.models.tfrs_compat import tfrs


def embedding_dims(spec: FeatureSpec, config: ModelConfig) -> dict[str, int]:
    """Embedding dim of every categorical feature; unknown names in the config raise ValueError."""
    cats = [f.name for f in spec.by_kind("categorical", "multi_categorical")]
    unknown = sorted(set(config.embedding_dims) - set(cats))
    if unknown:
        raise ValueError(
            f"model.embedding_dims names unknown categorical features {unknown}; categorical features: {cats}"
        )
    return {name: config.embedding_dims.get(name, config.embedding_dim) for name in cats}


def multi_width(feature) -> int:
    """Values pooled per row: the spec's max_values (at least 1) for multi-valued, else 0."""
    if feature.kind != "multi_categorical":
        return 0
    return max(1, feature.max_values)


class RankingModel(tfrs.models.Model):
    """Click-probability model built from a feature spec and a :class:`ModelConfig`."""

    def __init__(
        self,
        spec: FeatureSpec,
        config: ModelConfig,
        train_metrics: bool = True,
        initializers: dict[str, Any] | None = None,
        name: str = "ranker",
        dense_grad_max_elements: int = 0,
    ):
        super().__init__(name=name)
        self.dense_grad_max_elements = dense_grad_max_elements
        init = {
            "embedding": "uniform",
            "dense": "glorot_uniform",
            "cross": "glorot_uniform",
            **(initializers or {}),
        }
        self.config = config
        self.train_metrics = train_metrics
        self.distribute_reduction_method = "first"  # metrics are already global on every replica
        self.transform = FeatureTransform(spec, name="transform")
        numeric = spec.by_kind("numeric")
        cats = spec.by_kind("categorical", "multi_categorical")
        if not numeric and not cats:
            raise ValueError("the feature spec has no features")
        dims = embedding_dims(spec, config)
        self.embedding = None
        if cats:
            self.embedding = FusedEmbedding(
                [(f.name, f.num_ids, dims[f.name], multi_width(f)) for f in cats],
                embeddings_initializer=init["embedding"],
                name="embedding",
            )
        self.bottom = None
        if numeric and config.bottom_mlp:
            self.bottom = MLP(
                config.bottom_mlp,
                config.tower_activation("bottom"),
                config.l2,
                init["dense"],
                name="bottom_mlp",
            )
        self.cross = self.dot = None
        if config.interaction == "cross":
            if config.cross_layers > 0:
                self.cross = CrossStack(
                    config.cross_layers,
                    config.cross_low_rank,
                    kernel_initializer=init["cross"],
                    l2=config.l2,
                    name="cross",
                )
        else:  # "dot" (the schema allows nothing else)
            self._check_dot(numeric, dims, config)
            self.dot = DotInteraction(name="dot")
        self.top = MLP(
            config.top_mlp, config.tower_activation("top"), config.l2, init["dense"], name="top_mlp"
        )
        self.head = keras.layers.Dense(1, kernel_initializer=init["dense"], name="head")
        self.task = tfrs.tasks.Ranking(
            loss=keras.losses.BinaryCrossentropy(reduction=keras.losses.Reduction.SUM),
            metrics=ranking_metrics(),
            name="task",
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self._spec = spec

    def build_from_spec(self) -> None:
        """Create all weights by calling the model on a one-row all-missing batch."""
        self(missing_batch(self._spec))

    @staticmethod
    def _check_dot(numeric, dims: dict[str, int], config: ModelConfig) -> None:
        sizes = set(dims.values())
        if numeric and config.bottom_mlp:
            sizes.add(config.bottom_mlp[-1])
        elif numeric:
            raise ValueError("interaction 'dot' needs a bottom MLP for the numeric features")
        if len(sizes) > 1:
            raise ValueError(
                f"interaction 'dot' needs one embedding dim equal to the bottom MLP's "
                f"last width; got dims {sorted(sizes)}"
            )

    def logits(self, features: dict, training: bool = False) -> tf.Tensor:
        """Raw features -> logits [B, 1]."""
        numeric, ids = self.transform(features)
        dense = self.bottom(numeric, training=training) if self.bottom is not None else numeric
        emb = self.embedding(ids) if self.embedding is not None else []
        if self.dot is not None:
            stack = ([dense[:, None, :]] if dense is not None else []) + emb
            stack = tf.concat(stack, axis=1)
            x = self.dot(stack)
            if dense is not None:
                x = tf.concat([dense, x], axis=1)
        else:
            flat = [tf.reshape(e, [-1, e.shape[1] * e.shape[2]]) for e in emb]
            x = tf.concat(([dense] if dense is not None else []) + flat, axis=1)
            if self.cross is not None:
                x = self.cross(x)
        x = self.top(x, training=training)
        return self.head(x)

    def call(self, features: dict, training: bool = False) -> tf.Tensor:
        """Raw features -> click probability [B, 1]."""
        return keras.activations.sigmoid(self.logits(features, training=training))

    # -- loss and metrics, correct under any tf.distribute strategy --------------------------------

    @staticmethod
    def labels_2d(labels: tf.Tensor) -> tf.Tensor:
        # (B, 1), never (B,): with (B,) Keras averages over the batch before the loss.
        return tf.reshape(tf.cast(labels, tf.float32), [-1, 1])

    def batch_loss(self, labels: tf.Tensor, probs: tf.Tensor) -> tf.Tensor:
        """Per-example SUM on this replica / global batch; gradients summed over replicas."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        total = self.task(labels, probs, compute_metrics=False)
        global_batch = tf.cast(tf.shape(labels)[0] * replicas, total.dtype)
        loss = tf.math.divide_no_nan(total, global_batch)
        if self.losses:
            loss += tf.nn.scale_regularization_loss(tf.add_n(self.losses))
        return loss

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        features, labels = inputs
        return self.batch_loss(self.labels_2d(labels), self(features, training=training))

    @staticmethod
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

    def record_metrics(self, labels, probs, loss, with_task_metrics: bool) -> None:
        """Update the loss tracker and (optionally) the task metrics with the *global* batch.

        Reading the metrics (``result()``) in a replica context costs a collective per metric under
        MultiWorkerMirroredStrategy: read them once, after the steps, not here."""
        ctx = tf.distribute.get_replica_context()
        probs = tf.stop_gradient(probs)
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            if with_task_metrics:  # one gather gives the metrics and the global mean loss
                both = self._gather(ctx, tf.concat([labels, probs], axis=1))
                labels, probs = both[:, :1], both[:, 1:]
                total = self.task(labels, probs, compute_metrics=True)
                loss = tf.math.divide_no_nan(total, tf.cast(tf.shape(labels)[0], total.dtype))
                if self.losses:
                    loss += tf.add_n(self.losses)
                self.loss_tracker.update_state(loss)
                return
            loss = ctx.all_reduce(tf.distribute.ReduceOp.SUM, loss)
        self.loss_tracker.update_state(loss)
        if with_task_metrics:
            self.task(labels, probs, compute_metrics=True)

    def densify(self, grads: list) -> list:
        """Small tables' sparse gradients as dense tensors (one all-reduce instead of gathers)."""
        limit = self.dense_grad_max_elements
        return [
            tf.convert_to_tensor(g)
            if isinstance(g, tf.IndexedSlices) and v.shape.num_elements() <= limit
            else g
            for g, v in zip(grads, self.trainable_variables, strict=True)
        ]

    def train_step(self, data):
        features, labels = data
        labels = self.labels_2d(labels)
        with tf.GradientTape() as tape:
            probs = self(features, training=True)
            loss = self.batch_loss(labels, probs)
        grads = self.densify(tape.gradient(loss, self.trainable_variables))
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        self.record_metrics(labels, probs, loss, self.train_metrics)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        features, labels = data
        labels = self.labels_2d(labels)
        probs = self(features, training=False)
        self.record_metrics(labels, probs, self.batch_loss(labels, probs), True)
        return {m.name: m.result() for m in self.metrics}

    def predict_step(self, data):
        features = data[0] if isinstance(data, tuple) else data
        return self(features, training=False)
