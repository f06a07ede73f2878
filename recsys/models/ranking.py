"""The ranking architecture: feature transforms -> embeddings + bottom MLP -> cross/dot -> top MLP.

``model(raw_features)`` returns the click probability ``[B, 1]``; the transforms of the feature spec
run inside the model, so the exported graph takes raw values.

``model.ensemble = N > 1`` builds N complete towers (embeddings, bottom MLP, interaction, top MLP,
head) with independent initialisations behind one shared feature transform, and averages their click
probabilities: probability space, because that is what an ensemble's prediction means for PD and
calibration (the mean of the members' estimates of P(click)), and because the loss is a BCE on
probabilities (recsys/train/objective.py), so the ensemble trains on exactly the prediction it
serves. :meth:`RankingModel.logits` stays one logit, log(p / (1 - p)) of the averaged p, computed
stably. The members train jointly on the loss of the average (one optimizer, the same batches).

The model is architecture only: the loss, the training metrics and the train step belong to the
task (:mod:`recsys.train.task`, :mod:`recsys.train.objective`).
"""

from __future__ import annotations

import dataclasses
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
    """Click-probability model built from a feature spec and a :class:`ModelConfig`.

    ``with_transform=False`` builds a tower without its own feature transform: an ensemble member,
    fed by the ensemble's shared transform.
    """

    def __init__(
        self,
        spec: FeatureSpec,
        config: ModelConfig,
        initializers: dict[str, Any] | None = None,
        name: str = "ranker",
        with_transform: bool = True,
    ):
        super().__init__(name=name)
        if config.ensemble > 1:
            self._build_ensemble(spec, config, initializers)
            return
        init = {
            "embedding": "uniform",
            "dense": "glorot_uniform",
            "cross": "glorot_uniform",
            **(initializers or {}),
        }
        self.config = config
        self.transform = FeatureTransform(spec, name="transform") if with_transform else None
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

    def _build_ensemble(self, spec: FeatureSpec, config: ModelConfig,
                        initializers: dict[str, Any] | None) -> None:
        """One shared transform and ``config.ensemble`` towers, each initialised by its own draws."""
        self.config = config
        self._spec = spec
        self.transform = FeatureTransform(spec, name="transform")
        member = dataclasses.replace(config, ensemble=1)
        self.ensemble_members = [RankingModel(spec, member, initializers, name=f"member_{i}",
                                     with_transform=False) for i in range(config.ensemble)]

    @property
    def members(self) -> list[RankingModel]:
        """The ensemble's towers ([] for a single model). The attribute is set, and tracked, only when
        ensemble > 1, so a single model's object graph (and every checkpoint written before ensembles
        existed) is unchanged."""
        return getattr(self, "ensemble_members", [])

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

    def member_logits(self, features: dict, training: bool = False) -> tf.Tensor:
        """Raw features -> every tower's logit [B, N] (N = 1 without an ensemble)."""
        assert self.transform is not None, "an ensemble member is called through its ensemble"
        numeric, ids = self.transform(features)
        if not self.members:
            return self.tower_logits(numeric, ids, training)
        return tf.concat([m((numeric, ids), training=training) for m in self.members], axis=1)

    def logits(self, features: dict, training: bool = False) -> tf.Tensor:
        """Raw features -> logits [B, 1]; an ensemble's is the logit of its averaged probability."""
        z = self.member_logits(features, training=training)
        if not self.members:
            return z
        # log(mean sigmoid(z)) - log(mean sigmoid(-z)): the 1/N cancels, and log-sum-exp is stable.
        return (tf.reduce_logsumexp(tf.math.log_sigmoid(z), axis=1, keepdims=True)
                - tf.reduce_logsumexp(tf.math.log_sigmoid(-z), axis=1, keepdims=True))

    def tower_logits(self, numeric, ids, training: bool = False) -> tf.Tensor:
        """Transformed features -> this tower's logits [B, 1]."""
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
        """Raw features -> click probability [B, 1] (an ensemble's: the mean of its towers').

        An ensemble member (no transform of its own) maps the shared transform's ``(numeric, ids)``
        to its logits [B, 1]: called through Keras, so its weights are scoped and tracked as built."""
        if self.transform is None:
            numeric, ids = features
            return self.tower_logits(numeric, ids, training=training)
        z = self.member_logits(features, training=training)
        if not self.members:
            return keras.activations.sigmoid(z)
        return tf.reduce_mean(keras.activations.sigmoid(z), axis=1, keepdims=True)
