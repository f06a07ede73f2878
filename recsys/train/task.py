"""The ranking task in TF Model Garden's shape: ``build_inputs``, ``build_model``, ``build_optimizer``,
``train_step``, ``evaluate`` and ``export``. The training loop (:mod:`recsys.train.trainer`) owns
the schedule, the backups and the output; the task owns what one step and one evaluation are, with
the loss and training metrics of :class:`~recsys.train.objective.RankingObjective`. The model
(:class:`~recsys.models.ranking.RankingModel`) is architecture only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import pipelines.feature_spec as feature_spec
from recsys.compat import tf
from recsys.config.schema import Experiment, ModelConfig
from recsys.data.input import count_examples, make_dataset
from recsys.data.stream import (
    EXAMPLE_ID,
    StreamSpec,
    count_records,
    train_stream,
    use_columnar,
    validation_dataset,
    worker_files,
)
from recsys.export.saved_model import export_saved_model
from recsys.export.warmup import raw_batch
from recsys.models.ranking import RankingModel
from recsys.train.evaluate import metrics as eval_metrics
from recsys.train.evaluate import predict_with_labels
from recsys.train.objective import RankingObjective, labels_2d
from recsys.train.optimizers import build_optimizer


def all_reduce_packed(grads: list[Any]) -> list[Any]:
    """Sum the replicas' gradients: every dense gradient in one collective (packed into one vector),
    sparse ones (big tables' IndexedSlices) gathered as the optimizer would. One collective per step
    instead of one per variable: on a CPU cluster each costs a round trip (benchmarks/train.py).
    With two workers each element is still one exact a + b; with more, the sum order is fixed by the
    worker count and the model (the same run to run)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return grads
    out = list(grads)
    dense = [i for i, g in enumerate(grads) if g is not None and not isinstance(g, tf.IndexedSlices)]
    if dense:
        flat = tf.concat([tf.reshape(grads[i], [-1]) for i in dense], axis=0)
        summed = ctx.all_reduce(tf.distribute.ReduceOp.SUM, flat)
        parts = tf.split(summed, [grads[i].shape.num_elements() for i in dense])
        for i, part in zip(dense, parts, strict=True):
            out[i] = tf.reshape(part, grads[i].shape)
    sparse = [i for i, g in enumerate(grads) if isinstance(g, tf.IndexedSlices)]
    if sparse:
        for i, g in zip(sparse, ctx.all_reduce(tf.distribute.ReduceOp.SUM, [grads[i] for i in sparse]),
                        strict=True):
            out[i] = g
    return out


class RankingTask:
    """One experiment's data, model, step and evaluation."""

    def __init__(self, config: Experiment, spec: feature_spec.FeatureSpec) -> None:
        self.config, self.spec = config, spec
        self._records: dict[tuple[str, ...], int] = {}
        self.objective: RankingObjective | None = None  # set by build_objective()
        self.teacher: RankingModel | None = None  # set by build_teacher(): distillation's frozen parent
        # Set by the trainer when train.record_visits: called with (global step, replica, ids).
        self.visit_writer: Any = None

    # -- inputs ---------------------------------------------------------------------------------------
    def stream_spec(self, num_workers: int, worker_index: int, replicas_per_worker: int) -> StreamSpec:
        d = self.config.data
        return StreamSpec(global_batch=d.batch_size, data_seed=self.config.determinism.data_seed,
                          shuffle_block=d.shuffle_buffer, sharding=d.sharding, num_workers=num_workers,
                          worker_index=worker_index, replicas_per_worker=replicas_per_worker,
                          validation_fraction=d.validation_fraction,
                          columnar=use_columnar(self.spec, d.format), windows=d.windows)

    def build_inputs(self, strategy: tf.distribute.Strategy, start_step: int, with_ids: bool = False,
                     cycle_first: int = 0):
        """The distributed train stream of this worker, starting at global step ``start_step``.

        ``cycle_first`` > 0 repeats the stream's first that many batches from memory: the model's
        speed without the input's cost (benchmarks), never for training.
        """

        def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
            per_worker = ctx.num_replicas_in_sync // ctx.num_input_pipelines
            stream = self.stream_spec(ctx.num_input_pipelines, ctx.input_pipeline_id, per_worker)
            files = tuple(worker_files(self.spec, stream))
            if files not in self._records:  # counted once per process, not per restart
                self._records[files] = count_records(self.spec, list(files), stream.validation_fraction,
                                                     stream.columnar, stream.windows)
            ds = train_stream(self.spec, stream, start_step, with_ids=with_ids,
                              num_records=self._records[files])
            return ds.take(cycle_first).cache().repeat() if cycle_first else ds

        # Raw string features (the transforms run in the model) cannot live on a GPU: keep the
        # batches on the host and let the model's lookups place what they produce.
        options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
        return strategy.distribute_datasets_from_function(dataset_fn, options)

    def build_eval_inputs(self) -> tf.data.Dataset:
        """The whole eval split (or ``data.eval_examples`` of it), one pass, in file order."""
        d = self.config.data
        return make_dataset(self.spec, "eval", d.eval_batch_size, cache=d.cache,
                            max_examples=d.eval_examples)

    def build_validation_inputs(self) -> tf.data.Dataset | None:
        """The validation split held out of train (``data.validation_fraction``), or None."""
        d = self.config.data
        if not d.validation_fraction:
            return None
        return validation_dataset(self.spec, d.validation_fraction, d.eval_batch_size, d.windows)

    def warmup_requests(self, n: int) -> list[dict[str, np.ndarray]]:
        """``n`` two-row raw requests from the eval split, for the export's assets.extra."""
        if n <= 0:
            return []
        ds = make_dataset(self.spec, "eval", 2)
        return [raw_batch(features, self.spec) for features, _ in ds.take(n)]

    def eval_size(self) -> int:
        n = count_examples(self.spec, "eval")
        return min(n, self.config.data.eval_examples) if self.config.data.eval_examples else n

    # -- model ----------------------------------------------------------------------------------------
    def build_model(self) -> RankingModel:
        """The architecture, with every weight created (call inside the strategy's scope).

        The one place a model is built: :meth:`plain_copy` calls it outside the scope.
        """
        model = RankingModel(self.spec, self.config.model)
        model.build_from_spec()
        return model

    def build_teacher(self, model_config: ModelConfig, weights: list[np.ndarray] | None) -> RankingModel:
        """The distillation parent: a second model from the parent's model config, with its weights
        (None: as initialised, for the benchmarks), frozen (call inside the strategy's scope, before
        :meth:`build_objective`). It is not part of the checkpoint."""
        teacher = RankingModel(self.spec, model_config, name="teacher")
        teacher.build_from_spec()
        if weights is not None:
            teacher.set_weights(weights)
        teacher.trainable = False
        self.teacher = teacher
        return teacher

    def build_objective(self) -> RankingObjective:
        """The loss and training metrics :meth:`train_step` uses (call inside the strategy's scope,
        after :meth:`build_teacher` when distilling)."""
        weight = self.config.train.distill_weight if self.teacher is not None else 0.0
        self.objective = RankingObjective(self.config.train.dense_grad_max_elements, weight)
        return self.objective

    def build_optimizer(self, model: RankingModel) -> Any:
        """The configured optimizer (one per variable group with ``train.embedding_optimizer``), its
        slots built, so a restore fills every variable (:mod:`recsys.train.optimizers`)."""
        return build_optimizer(self.config.train, model)

    # -- one step ---------------------------------------------------------------------------------------
    def train_step(self, model: RankingModel, optimizer: Any,
                   features: dict, labels: tf.Tensor) -> dict[str, Any]:
        """One replica's step: loss on its rows (scaled to the global batch), all-reduced gradients,
        an optimizer update, metrics over the global batch; the example ids go to the visit log."""
        ids = features.pop(EXAMPLE_ID, None)
        if ids is not None and self.visit_writer is not None:
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            tf.py_function(self._visit, [optimizer.iterations, replica, ids], [])
        objective = self.objective
        if objective is None:
            raise RuntimeError("build_objective() before train_step()")
        labels = labels_2d(labels)
        teacher = None
        if self.teacher is not None and objective.distill_weight > 0:
            teacher = tf.stop_gradient(self.teacher(features, training=False))
        with tf.GradientTape() as tape:
            probs = model(features, training=True)
            loss = objective.batch_loss(model, labels, probs, teacher)
        grads = all_reduce_packed(objective.densify(tape.gradient(loss, model.trainable_variables),
                                                    model.trainable_variables))
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True),
                                  skip_gradients_aggregation=True)
        objective.record(model, labels, probs, loss, self.config.train.train_metrics, teacher)
        return {}

    def _visit(self, step: tf.Tensor, replica: tf.Tensor, ids: tf.Tensor) -> None:
        self.visit_writer(step.numpy(), replica.numpy(), ids.numpy())

    # -- evaluation and export --------------------------------------------------------------------------
    def evaluate(self, plain: RankingModel, eval_ds: tf.data.Dataset
                 ) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
        """Exact metrics of a strategy-free model over the eval split: (metrics, predictions, labels)."""
        preds, labels = predict_with_labels(plain, eval_ds)
        return eval_metrics(labels, preds), preds, labels

    def plain_copy(self, model: RankingModel) -> RankingModel:
        """A strategy-free copy with ``model``'s weights, for evaluation and export (call it outside the
        strategy scope, on every worker: under MultiWorkerMirroredStrategy reading the weights is a
        collective). The trained model's variables are distributed, so evaluating or saving it would
        run collectives; this copy is the model that is evaluated and exported."""
        if tf.distribute.has_strategy():
            raise RuntimeError("build the strategy-free copy outside the distribution strategy's scope")
        weights = model.get_weights()
        plain = self.build_model()
        if len(weights) != len(plain.get_weights()):
            raise RuntimeError(f"the copy has {len(plain.get_weights())} weights, the model {len(weights)}")
        plain.set_weights(weights)
        return plain

    def export(self, plain: RankingModel, base_dir: str, extra_files: dict[str, str]) -> str:
        """The SavedModel of the strategy-free ``plain`` model (saved as it is, not rebuilt) in TF
        Serving's layout, ``<base_dir>/<model_name>/<version>``."""
        e = self.config.export
        return export_saved_model(plain, self.spec, base_dir, e.model_name, e.version,
                                  warmup_requests=self.warmup_requests(e.warmup_requests),
                                  extra_files=extra_files)
