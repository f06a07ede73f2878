"""The embedding cost model: per-worker memory and all-reduce bytes per step, from spec + config alone.

No TensorFlow: the tables are derived the way :class:`recsys.models.embedding.FusedEmbedding` builds
them (one fused float32 table per embedding dim, ``sum(num_ids)`` rows), the dense layers the way
:class:`recsys.models.RankingModel` builds them. Under MultiWorkerMirroredStrategy every variable is
replicated on every worker, so every worker holds all of it.

Per worker and table, with ``W = rows * dim * 4`` bytes (float32):

- weights ``W``; optimizer slots ``slots * W`` (Adam 2, Adagrad 1, SGD 0) of the table's optimizer:
  ``train.embedding_optimizer`` (lazy_adam 2, adagrad 1, sgd 0), or ``train.optimizer`` when "same";
- the trainer's strategy-free copy for evaluation and export: ``W``;
- transients ``TRANSIENT * W``: the initializer's temporaries, the NumPy copy of ``get_weights`` and
  the export clone's own build; a table with dense gradients adds ``DENSE_GRAD_EXTRA * W`` (the
  materialised gradient) and, with more than one replica, ``ALLREDUCE_BUFFERS * W`` (the all-reduce's
  input and output).

``peak = W * (2 + slots + TRANSIENT [+ DENSE_GRAD_EXTRA [+ ALLREDUCE_BUFFERS]])``. The constants are
peak-RSS growth per table byte measured with ``recsys.train.train`` (train, evaluate, export) on TF
2.21 CPU; tests/planning/test_plan_memory.py re-measures the single-process case. Measured peak/W,
one process: Adam 10.1 (sparse gradients) and 10.7 (dense); Adagrad and SGD 8.3 and 8.6. Two local
workers, Adam: 9.7 (sparse, both workers), 12.9 and 10.9 (dense, chief and worker).

All-reduce per step (the payload each replica ends up with; a ring all-reduce moves about
``2 (N-1)/N`` times the payload per worker):

- dense gradients (tables up to ``train.dense_grad_max_elements`` elements, and every dense layer):
  the whole gradient, ``W`` bytes, however few rows the batch touched;
- sparse gradients (bigger tables): an all-gather of the rows touched,
  ``replicas * batch_per_replica * ids_per_example * (dim * 4 + 8)`` bytes (values + int64 indices);
  ``ids_per_example`` is one per single-valued feature and ``max_values`` per multi-valued one.

Sparse is the smaller payload once ``rows > global_batch * ids_per_example * (1 + 2 / dim)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from pipelines.feature_spec import Feature, FeatureSpec
from recsys.config.schema import Experiment, ModelConfig
from recsys.planning.quantity import format_bytes

FLOAT = 4  # bytes per float32 element
INDEX = 8  # bytes per int64 index of a sparse gradient row
SLOTS = {"adam": 2, "adagrad": 1, "sgd": 0}
# train.embedding_optimizer -> slots (recsys/train/optimizers.py: its sgd keeps no momentum slot)
EMBEDDING_SLOTS = {"lazy_adam": 2, "adagrad": 1, "sgd": 0}
EVAL_COPY = 1.0  # the trainer's strategy-free copy (evaluation, export), in units of W
TRANSIENT = 6.0  # initializer temporaries, get_weights NumPy copy, export clone build (measured)
DENSE_GRAD_EXTRA = 0.5  # the materialised dense gradient of a densified table (measured)
ALLREDUCE_BUFFERS = 2.0  # a dense gradient's all-reduce input and output, with 2+ replicas (measured)
RUNTIME_BYTES = 1 << 30  # TF runtime, graphs and input pipeline (0.65 GiB measured before the model)
HEADROOM_FACTOR = 1.25  # allocator fragmentation and run-to-run spread on top of the estimate


@dataclass(frozen=True)
class TablePlan:
    """One fused table (all features of one embedding dim), or the dense layers (``dim == 0``)."""

    name: str
    features: tuple[str, ...]
    rows: int
    dim: int
    gradient: str  # "dense" (full all-reduce) or "sparse" (all-gather of touched rows)
    ids_per_example: int
    weight_bytes: int
    slot_bytes: int
    peak_bytes: int  # per worker, including the eval copy and transients
    allreduce_bytes: int  # per step, per replica (0 with one replica)
    optimizer: str = ""  # the optimizer updating it (its slots are slot_bytes)

    @property
    def elements(self) -> int:
        return self.weight_bytes // FLOAT


@dataclass(frozen=True)
class Plan:
    """The cost of one experiment on ``workers`` workers of ``memory_bytes`` each (0 = unknown)."""

    experiment: str
    workers: int
    replicas: int
    global_batch: int
    optimizer: str
    dense_grad_max_elements: int
    tables: tuple[TablePlan, ...]
    dense: TablePlan
    metrics_allreduce_bytes: int
    memory_bytes: int = 0
    warnings: tuple[str, ...] = field(default=())

    @property
    def embedding_optimizer(self) -> str:
        """The tables' optimizer (the dense one's name when they share it)."""
        return self.tables[0].optimizer if self.tables else self.optimizer

    @property
    def embedding_slots(self) -> int:
        return EMBEDDING_SLOTS.get(self.embedding_optimizer, SLOTS.get(self.embedding_optimizer, 0))

    @property
    def state_bytes(self) -> int:
        """Weights + optimizer slots per worker (what a checkpoint restores)."""
        return sum(t.weight_bytes + t.slot_bytes for t in self.all_tables)

    @property
    def peak_bytes(self) -> int:
        return sum(t.peak_bytes for t in self.all_tables)

    @property
    def need_bytes(self) -> int:
        """What a worker needs: the peak with headroom, plus the TF runtime and input pipeline."""
        return int(self.peak_bytes * HEADROOM_FACTOR) + RUNTIME_BYTES

    @property
    def all_tables(self) -> tuple[TablePlan, ...]:
        return self.tables + (self.dense,)

    @property
    def allreduce_dense_bytes(self) -> int:
        return sum(t.allreduce_bytes for t in self.all_tables if t.gradient == "dense")

    @property
    def allreduce_sparse_bytes(self) -> int:
        return sum(t.allreduce_bytes for t in self.all_tables if t.gradient == "sparse")

    @property
    def fits(self) -> bool:
        return not self.memory_bytes or self.need_bytes <= self.memory_bytes

    def refusal(self) -> str:
        """Why a worker would run out of memory, naming the biggest table ('' when it fits)."""
        if self.fits:
            return ""
        big = max(self.tables or (self.dense,), key=lambda t: t.peak_bytes)
        return (
            f"a worker needs {format_bytes(self.need_bytes)} but has {format_bytes(self.memory_bytes)}: "
            f"table {big.name} ({big.rows:,} rows x {big.dim}, features {', '.join(big.features[:6])}"
            f"{', ...' if len(big.features) > 6 else ''}) alone peaks at {format_bytes(big.peak_bytes)}. "
            "Hash it to fewer buckets, raise the preprocessing frequency threshold, or give its "
            "features a smaller dim (model.embedding_dims)"
        )

    def to_dict(self) -> dict:
        def table(t: TablePlan) -> dict:
            return {**dataclasses.asdict(t), "elements": t.elements}

        return {
            "experiment": self.experiment,
            "workers": self.workers,
            "replicas": self.replicas,
            "global_batch": self.global_batch,
            "batch_per_replica": self.global_batch // self.replicas,
            "optimizer": self.optimizer,
            "optimizer_slots": SLOTS[self.optimizer],
            "embedding_optimizer": self.embedding_optimizer,
            "embedding_optimizer_slots": self.embedding_slots,
            "dense_grad_max_elements": self.dense_grad_max_elements,
            "tables": [table(t) for t in self.tables],
            "dense": table(self.dense),
            "per_worker": {
                "state_bytes": self.state_bytes,
                "peak_bytes": self.peak_bytes,
                "need_bytes": self.need_bytes,
                "memory_bytes": self.memory_bytes,
                "fits": self.fits,
            },
            "allreduce_per_step": {
                "dense_bytes": self.allreduce_dense_bytes,
                "sparse_bytes": self.allreduce_sparse_bytes,
                "metrics_bytes": self.metrics_allreduce_bytes,
                "total_bytes": self.allreduce_dense_bytes + self.allreduce_sparse_bytes
                + self.metrics_allreduce_bytes,
            },
            "model": {
                "factor_eval_copy": EVAL_COPY,
                "factor_transient": TRANSIENT,
                "factor_dense_grad_extra": DENSE_GRAD_EXTRA,
                "factor_allreduce_buffers": ALLREDUCE_BUFFERS,
                "runtime_bytes": RUNTIME_BYTES,
                "headroom_factor": HEADROOM_FACTOR,
            },
            "warnings": list(self.warnings),
            "refusal": self.refusal(),
        }


def embedding_dims(spec: FeatureSpec, config: ModelConfig) -> dict[str, int]:
    """Embedding dim of every categorical feature (as :func:`recsys.models.embedding_dims`)."""
    cats = [f.name for f in spec.by_kind("categorical", "multi_categorical")]
    unknown = sorted(set(config.embedding_dims) - set(cats))
    if unknown:
        raise ValueError(f"model.embedding_dims names unknown categorical features {unknown}; "
                         f"categorical features: {cats}")
    return {name: config.embedding_dims.get(name, config.embedding_dim) for name in cats}


def _ids_per_example(f: Feature) -> int:
    return max(1, f.max_values) if f.kind == "multi_categorical" else 1


def _dense_params(spec: FeatureSpec, m: ModelConfig, dims: dict[str, int]) -> int:
    """Trainable parameters of the bottom MLP, interaction, top MLP and head (fixed activations)."""
    def mlp(width: int, units: tuple[int, ...]) -> tuple[int, int]:
        n = 0
        for u in units:
            n, width = n + width * u + u, u
        return n, width

    numeric = len(spec.by_kind("numeric"))
    params, dense_out = mlp(numeric, m.bottom_mlp) if numeric and m.bottom_mlp else (0, numeric)
    if m.interaction == "dot":
        f = len(dims) + (1 if numeric else 0)
        x = f * (f - 1) // 2 + dense_out
    else:
        x = dense_out + sum(dims.values())
        per_layer = 2 * x * m.cross_low_rank + x if m.cross_low_rank else x * x + x
        params += m.cross_layers * per_layer
    top, width = mlp(x, m.top_mlp)
    return params + top + width + 1


def _peak(weight_bytes: int, slots: int, dense_grad: bool, replicas: int) -> int:
    factor = 1 + slots + EVAL_COPY + TRANSIENT
    if dense_grad:
        factor += DENSE_GRAD_EXTRA + (ALLREDUCE_BUFFERS if replicas > 1 else 0.0)
    return int(weight_bytes * factor)


def plan_experiment(
    config: Experiment,
    spec: FeatureSpec,
    workers: int = 1,
    replicas_per_worker: int = 1,
    memory_bytes: int = 0,
) -> Plan:
    """The cost of training ``config`` on ``spec`` with ``workers`` MultiWorkerMirroredStrategy workers."""
    t = config.train
    if t.optimizer not in SLOTS:
        raise ValueError(f"train.optimizer must be one of {sorted(SLOTS)}, got {t.optimizer!r}")
    if workers < 1 or replicas_per_worker < 1:
        raise ValueError("workers and replicas_per_worker must be >= 1")
    replicas = workers * replicas_per_worker
    slots = SLOTS[t.optimizer]
    table_optimizer = t.optimizer if t.embedding_optimizer == "same" else t.embedding_optimizer
    table_slots = slots if t.embedding_optimizer == "same" else EMBEDDING_SLOTS[t.embedding_optimizer]
    batch = config.data.batch_size
    per_replica = batch // replicas
    dims = embedding_dims(spec, config.model)
    groups: dict[int, list[Feature]] = {}
    for f in spec.by_kind("categorical", "multi_categorical"):
        groups.setdefault(dims[f.name], []).append(f)
    tables = []
    warnings = []
    if batch % replicas:
        warnings.append(f"data.batch_size={batch} is not a multiple of {replicas} replicas")
    towers = config.model.ensemble  # an ensemble has every table and dense layer once per tower
    for dim, feats in sorted(groups.items()):
        rows = towers * sum(f.num_ids for f in feats)
        weight = rows * dim * FLOAT
        dense = rows * dim <= t.dense_grad_max_elements
        ids = towers * sum(_ids_per_example(f) for f in feats)
        if replicas == 1:
            wire = 0
        elif dense:
            wire = weight
        else:
            wire = replicas * per_replica * ids * (dim * FLOAT + INDEX)
        tables.append(TablePlan(
            name=f"table_d{dim}", features=tuple(f.name for f in feats), rows=rows, dim=dim,
            gradient="dense" if dense else "sparse", ids_per_example=ids, weight_bytes=weight,
            slot_bytes=table_slots * weight, peak_bytes=_peak(weight, table_slots, dense, replicas),
            allreduce_bytes=wire, optimizer=table_optimizer,
        ))  # fmt: skip
        if replicas > 1 and dense and rows > batch * ids * (1 + 2 / dim):
            warnings.append(
                f"table_d{dim}: dense gradients all-reduce {format_bytes(weight)} per step; the sparse "
                f"all-gather would be {format_bytes(replicas * per_replica * ids * (dim * FLOAT + INDEX))}"
                f" (lower train.dense_grad_max_elements below {rows * dim:,})"
            )
    dense_weight = towers * _dense_params(spec, config.model, dims) * FLOAT
    dense_table = TablePlan(
        name="dense_layers", features=(), rows=dense_weight // FLOAT, dim=0, gradient="dense",
        ids_per_example=0, weight_bytes=dense_weight, slot_bytes=slots * dense_weight,
        peak_bytes=_peak(dense_weight, slots, True, replicas),
        allreduce_bytes=dense_weight if replicas > 1 else 0, optimizer=t.optimizer,
    )  # fmt: skip
    metrics = batch * 2 * FLOAT if replicas > 1 and t.train_metrics else 0  # (label, prob) all-gather
    plan = Plan(
        experiment=config.name, workers=workers, replicas=replicas, global_batch=batch,
        optimizer=t.optimizer, dense_grad_max_elements=t.dense_grad_max_elements, tables=tuple(tables),
        dense=dense_table, metrics_allreduce_bytes=metrics, memory_bytes=memory_bytes,
    )  # fmt: skip
    if not plan.fits:
        warnings.append(plan.refusal())
    return dataclasses.replace(plan, warnings=tuple(warnings))


def override_num_ids(spec: FeatureSpec, num_ids: dict[str, int], max_ids: int = 0) -> FeatureSpec:
    """The spec with some features' ids set (as hashing to that many buckets would) or capped."""
    unknown = sorted(set(num_ids) - {f.name for f in spec.by_kind("categorical", "multi_categorical")})
    if unknown:
        raise ValueError(f"num_ids names unknown categorical features {unknown}")
    feats = []
    for f in spec.features:
        n = num_ids.get(f.name, f.num_ids)
        if max_ids and n > max_ids:
            n = max_ids
        if f.kind != "numeric" and n != f.num_ids:
            f = dataclasses.replace(f, encoding="hash", hash_buckets=int(n), vocabulary_file="",
                                    vocabulary_size=0, num_oov_buckets=0)
        feats.append(f)
    return dataclasses.replace(spec, features=tuple(feats))
