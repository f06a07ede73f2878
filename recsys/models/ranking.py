"""The ranking architecture: feature transforms -> embeddings + bottom MLP -> cross/dot -> top MLP.

``model(raw_features)`` returns the click probability ``[B, 1]``; the transforms of the feature spec
run inside the model, so the exported graph takes raw values. The model is architecture only: the
loss, the training metrics and the train step belong to the task (:mod:`recsys.train.task`,
:mod:`recsys.train.objective`).
"""

from __future__ import annotations

from typing import Any

from pipelines.feature_spec import FeatureSpec
from recsys.compat import keras, tf
from recsys.config.schema import ModelConfig
from recsys.models.embedding import FusedEmbedding
from recsys.models.interaction import CrossStack, DotInteraction
from recsys.models.mlp import MLP
from recsys.models.preprocessing import FeatureTransform, missing_batch


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


class RankingModel(keras.Model):
    """Click-probability model built from a feature spec and a :class:`ModelConfig`."""

    def __init__(
        self,
        spec: FeatureSpec,
        config: ModelConfig,
        initializers: dict[str, Any] | None = None,
        name: str = "ranker",
    ):
        super().__init__(name=name)
        init = {
            "embedding": "uniform",
            "dense": "glorot_uniform",
            "cross": "glorot_uniform",
            **(initializers or {}),
        }
        self.config = config
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
