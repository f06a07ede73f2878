"""Typed, frozen experiment configuration: one dataclass per concern, nested in :class:`Experiment`.

Every field has a default so a YAML file or ``--set`` override only names what differs.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

# An activation spec as the registry takes it: "relu", "smelu(beta=0.5)" or {"name": ..., ...}.
ActivationSpec = str | dict[str, Any]
Interaction = Literal["cross", "dot"]
Optimizer = Literal["adam", "adagrad", "sgd"]
# The embedding tables' optimizer: "same" as train.optimizer, or one of its own (recsys/train/optimizers.py).
EmbeddingOptimizer = Literal["same", "adagrad", "sgd", "lazy_adam"]
Collective = Literal["AUTO", "RING", "NCCL"]
Sharding = Literal["global_batch", "file"]
DataFormat = Literal["auto", "columnar", "tfexample"]
EarlyStoppingMetric = Literal["auc", "logloss"]


# A field whose value cannot change the trained model (output, logging, backup interval, paths: the
# data fingerprint covers the data): left out of the config digest, so changing it is no config change
# on resume. Declare it with ``neutral(default)`` (or ``neutral(default_factory=...)``).
NEUTRAL = "neutral"


def neutral(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field that cannot change the model (see :data:`NEUTRAL`)."""
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata={NEUTRAL: True})
    return field(default=default, metadata={NEUTRAL: True})


def neutral_fields(cls: type | None = None, prefix: str = "") -> tuple[str, ...]:
    """Dotted names of every field declared :func:`neutral` in ``cls`` (default :class:`Experiment`)
    and its nested config sections; a neutral section is named whole."""
    cls = Experiment if cls is None else cls
    hints = typing.get_type_hints(cls)
    out: list[str] = []
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        if f.metadata.get(NEUTRAL):
            out.append(name)
        elif dataclasses.is_dataclass(hints[f.name]):
            out += neutral_fields(hints[f.name], f"{name}.")
    return tuple(out)


def check_choice(value: Any, choices: Any, field_name: str) -> None:
    """Raise ``ValueError`` unless ``value`` is one of the ``Literal`` type ``choices``."""
    options = typing.get_args(choices)
    if value not in options:
        raise ValueError(f"{field_name} must be one of {list(options)}, got {value!r}")


def check(ok: bool, field_name: str, requirement: str, value: Any) -> None:
    """Raise ``ValueError("<field> must be <requirement>, got <value>")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{field_name} must be {requirement}, got {value!r}")


@dataclass(frozen=True)
class DataConfig:
    """Where the shards are and how they are batched (batch sizes are global, over all replicas)."""

    spec_dir: str = neutral("")  # directory holding feature_spec.json (written by `recsys preprocess`)
    batch_size: int = 4096
    eval_batch_size: int = 8192
    # Records are shuffled in blocks of this many (stateless, seeded by data_seed, epoch and block),
    # and the shard order is drawn per epoch. 0 disables shuffling.
    shuffle_buffer: int = 16384
    cache: bool = False  # cache the parsed eval batches in memory (small data sets, benchmarks)
    # How workers share the train stream: "global_batch" (every worker reads everything and keeps its
    # rows of each global batch: the batches do not depend on the worker count) or "file" (worker i
    # reads every N-th shard: less reading, but the batches change with the worker count).
    sharding: Sharding = "global_batch"
    eval_examples: int = 0  # 0 = the whole eval split
    # Hold out this fraction of the train records (a hash of each serialized record decides) as a
    # validation split: the train stream never reads them, and every evaluation also predicts them, so
    # a study can choose its step on validation and report on the untouched eval split. 0: none.
    validation_fraction: float = 0.0
    # Which copy of the train split the stream reads: "columnar" (pre-batched columns written by
    # `recsys preprocess`: parsed once per chunk, several times cheaper), "tfexample" (one record per
    # row), or "auto" (columnar when the spec has it). Both give the same batches, bit for bit.
    format: DataFormat = neutral("auto")  # both give the same batches (tests/data/test_columnar.py)
    # The time windows of the train split to train on (`recsys preprocess --windows N` wrote them),
    # increasing indexes, read in that order; () = every train shard. The eval split is after them all.
    windows: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        check_choice(self.sharding, Sharding, "sharding")
        check_choice(self.format, DataFormat, "format")
        check(self.batch_size >= 1, "batch_size", ">= 1", self.batch_size)
        check(self.eval_batch_size >= 1, "eval_batch_size", ">= 1", self.eval_batch_size)
        check(self.shuffle_buffer >= 0, "shuffle_buffer", ">= 0", self.shuffle_buffer)
        check(self.eval_examples >= 0, "eval_examples", ">= 0", self.eval_examples)
        check(all(w >= 0 for w in self.windows) and list(self.windows) == sorted(set(self.windows)),
              "windows", "increasing window indexes >= 0", self.windows)


@dataclass(frozen=True)
class ModelConfig:
    """The ranking model: embeddings, bottom MLP, interaction, top MLP; activations from the registry."""

    embedding_dim: int = 16
    # Per-feature dims override embedding_dim: {"C1": 32}. Features sharing a dim share one fused table.
    embedding_dims: dict[str, int] = field(default_factory=dict)
    bottom_mlp: tuple[int, ...] = (64, 16)
    top_mlp: tuple[int, ...] = (128, 64)
    interaction: Interaction = "cross"  # "cross" (DCN-v2) or "dot" (DLRM)
    cross_layers: int = 2
    cross_low_rank: int = 0  # 0 = full-rank cross kernel; k > 0 = U V^T with inner dim k
    activation: ActivationSpec = "relu"  # every nonlinearity unless a tower overrides it
    bottom_activation: ActivationSpec | None = None
    top_activation: ActivationSpec | None = None
    l2: float = 0.0  # L2 weight decay on dense kernels
    # N > 1: N complete towers with independent initialisations, their click probabilities averaged
    # into one prediction (recsys/models/ranking.py). 1: a single model, unchanged.
    ensemble: int = 1

    def __post_init__(self) -> None:
        check_choice(self.interaction, Interaction, "interaction")
        check(self.ensemble >= 1, "ensemble", ">= 1 (the number of averaged towers)", self.ensemble)
        check(self.embedding_dim >= 1, "embedding_dim", ">= 1", self.embedding_dim)
        for name, dim in self.embedding_dims.items():
            check(dim >= 1, f"embedding_dims.{name}", ">= 1", dim)
        for name, widths in (("bottom_mlp", self.bottom_mlp), ("top_mlp", self.top_mlp)):
            check(all(w >= 1 for w in widths), name, "a list of widths >= 1", list(widths))
        check(self.cross_layers >= 0, "cross_layers", ">= 0", self.cross_layers)
        check(self.cross_low_rank >= 0, "cross_low_rank", ">= 0", self.cross_low_rank)
        check(self.l2 >= 0, "l2", ">= 0", self.l2)

    def tower_activation(self, tower: str) -> ActivationSpec:
        """The activation spec of a tower ("bottom" or "top"), falling back to ``activation``."""
        own = {"bottom": self.bottom_activation, "top": self.top_activation}[tower]
        return self.activation if own is None else own


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation schedule; ``steps`` counts global batches."""

    steps: int = 1000
    eval_every: int = 0  # 0 = evaluate once, at the end
    optimizer: Optimizer = "adam"
    learning_rate: float = 1e-3
    # Linear learning-rate warm-up: step i (0-based) uses learning_rate * min(1, (i + 1) / warmup_steps),
    # for every optimizer (recsys/train/optimizers.py). 0: off, the constant rate.
    warmup_steps: int = 0
    # The embedding tables' own optimizer ("same": train.optimizer for every variable). Adagrad, SGD and
    # lazy_adam update only the rows a batch touched when the table's gradient is sparse, so a step
    # costs the same whatever the table's size (docs/training.md, "Optimizers per variable group").
    embedding_optimizer: EmbeddingOptimizer = "same"
    embedding_learning_rate: float = 0.0  # 0: train.learning_rate
    steps_per_execution: int = 1
    train_metrics: bool = True  # AUC/logloss/calibration on training batches (costs a gather per step)
    # Embedding tables up to this many elements get dense gradients: one dense all-reduce is cheaper
    # across workers than all-gathering sparse rows, until the table gets big. 0 = always sparse.
    dense_grad_max_elements: int = 4_000_000
    checkpoint: bool = neutral(True)  # keep a checkpoint (weights + optimizer) at every evaluation
    # Save the complete training state (weights, optimizer slots, global step; the input position and
    # every random state follow from the step) every N global steps, atomically, to <model_dir>/backup.
    # A restarted job resumes from it bit-exactly. 0 = only at evaluations and at the end.
    backup_every_steps: int = neutral(100)
    # Debugging/tests: every worker appends the fingerprints of the examples of each step to
    # <model_dir>/visits/worker-<i>.jsonl.
    record_visits: bool = neutral(False)
    tensorboard: bool = neutral(True)
    # Keep the eval predictions of every evaluation; the chief writes them to eval_predictions.npz
    # (steps, predictions [evaluations, examples], labels) for PD-over-time between replicas.
    record_eval_predictions: bool = neutral(False)
    verbose: int = neutral(2)  # 0 silent; otherwise one line of train and eval metrics per evaluation
    # Model updates (recsys/train/parent.py; docs/training.md "Model updates"). A parent is a finished
    # run's model_dir or an export version dir. A NEW run starts from the parent's weights (and, with
    # warm_start_optimizer, a run dir's optimizer slots); a resume takes its backup and never reads the
    # parent. The paths are model-relevant (not neutral): another path is a config change on resume;
    # the parent's weights digest is recorded in train_state.json at the start and in the fingerprint.
    warm_start_from: str = ""
    warm_start_optimizer: bool = False
    # Churn-reducing distillation (Jiang et al. 2022): loss = (1 - w) BCE(label, p) + w BCE(p_parent, p)
    # with p_parent the frozen parent's probability on the same batch. The parent is read on every
    # start (resumes too) and its weights digest checked against the run record.
    distill_from: str = ""
    distill_weight: float = 0.0
    # Early stopping on the validation split (docs/training.md "Early stopping"): stop after this many
    # evaluations in a row without an improvement of the validation metric by more than min_delta, and
    # keep the best evaluation's weights (its kept checkpoint). steps is then the maximum. 0: off.
    early_stopping_patience: int = 0
    early_stopping_metric: EarlyStoppingMetric = "auc"
    early_stopping_min_delta: float = 0.0

    def __post_init__(self) -> None:
        check_choice(self.optimizer, Optimizer, "optimizer")
        check(self.steps >= 1, "steps", ">= 1", self.steps)
        check(self.eval_every >= 0, "eval_every", ">= 0", self.eval_every)
        check(self.learning_rate > 0, "learning_rate", "> 0", self.learning_rate)
        check(self.warmup_steps >= 0, "warmup_steps", ">= 0", self.warmup_steps)
        check_choice(self.embedding_optimizer, EmbeddingOptimizer, "embedding_optimizer")
        check(self.embedding_learning_rate >= 0, "embedding_learning_rate", ">= 0",
              self.embedding_learning_rate)
        check(self.steps_per_execution >= 1, "steps_per_execution", ">= 1", self.steps_per_execution)
        check(self.backup_every_steps >= 0, "backup_every_steps", ">= 0", self.backup_every_steps)
        check(self.dense_grad_max_elements >= 0, "dense_grad_max_elements", ">= 0",
              self.dense_grad_max_elements)
        check(0.0 <= self.distill_weight <= 1.0, "distill_weight", "in [0, 1]", self.distill_weight)
        check(self.distill_weight == 0 or bool(self.distill_from), "distill_weight",
              "0 when distill_from is empty (distillation needs a parent)", self.distill_weight)
        check(not self.warm_start_optimizer or bool(self.warm_start_from), "warm_start_optimizer",
              "false when warm_start_from is empty", self.warm_start_optimizer)
        check(self.early_stopping_patience >= 0, "early_stopping_patience", ">= 0",
              self.early_stopping_patience)
        check_choice(self.early_stopping_metric, EarlyStoppingMetric, "early_stopping_metric")
        check(self.early_stopping_min_delta >= 0, "early_stopping_min_delta", ">= 0",
              self.early_stopping_min_delta)
        check(not self.early_stopping_patience or self.checkpoint, "checkpoint",
              "true with early_stopping_patience > 0 (the best evaluation's kept checkpoint is restored)",
              self.checkpoint)


@dataclass(frozen=True)
class DeterminismConfig:
    """Every source of run-to-run variation that the trainer controls, in one place."""

    seed: int = 0  # model initialisation (and everything else seeded by tf.keras.utils.set_random_seed)
    data_seed: int = 0  # shuffle order of the training data
    op_determinism: bool = False  # tf.config.experimental.enable_op_determinism()
    collective: Collective = "AUTO"  # MultiWorkerMirroredStrategy communication
    # Numerical noise: initial weights *= 1 + weight_noise * N(0, 1) (seeded by weight_noise_seed).
    # A stand-in for hardware / all-reduce nondeterminism when studying reproducibility on a CPU.
    weight_noise: float = 0.0
    weight_noise_seed: int = 0

    def __post_init__(self) -> None:
        check_choice(self.collective, Collective, "collective")
        check(self.weight_noise >= 0, "weight_noise", ">= 0", self.weight_noise)


@dataclass(frozen=True)
class ExportConfig:
    """TF Serving layout: <base_dir>/<model_name>/<version>/. Empty base_dir = <model_dir>/export."""

    enabled: bool = True
    base_dir: str = ""
    model_name: str = "ranker"
    version: int = 0  # 0 = one more than the largest version under <base_dir>/<model_name> (1 when none)
    warmup_requests: int = 3


@dataclass(frozen=True)
class Experiment:
    """A named, fully resolved experiment; saved as YAML next to the model."""

    name: str = neutral("default")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    determinism: DeterminismConfig = field(default_factory=DeterminismConfig)
    export: ExportConfig = neutral(default_factory=ExportConfig)
