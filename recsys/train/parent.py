"""The parents of a model update: the warm-start parent (``train.warm_start_from``) and the
distillation teacher (``train.distill_from``), each a finished run's model_dir or an export version
dir (:mod:`recsys.repro.lineage` finds its files).

A parent is loaded before anything is written to the child's model_dir (:func:`resolve`, called by
:func:`recsys.train.session.open_run` before the lock): its fingerprint and config are read, its
feature spec must be the child's (the fingerprint's ``data.spec_sha256``), its weights are restored
into a strategy-free model built from its own ``model`` config (an export's ``model/variables/<i>``,
:func:`recsys.export.saved_model.read_weights`; a run's ``backup/`` checkpoint), and their digest must
equal the fingerprint's: a missing, corrupt or mismatched parent is refused with a :class:`ParentError` that
names the problem. A warm-start parent must also have the child's variables (count and shapes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import pipelines.feature_spec as feature_spec
from recsys.compat import tf
from recsys.config import loading
from recsys.config.schema import Experiment, ModelConfig
from recsys.export.saved_model import read_weights
from recsys.models.ranking import RankingModel
from recsys.repro import lineage
from recsys.repro.lineage import ParentError as ParentError  # re-exported: the trainer's refusal
from recsys.train import fingerprint
from recsys.train.run_dir import RunDir

WARM = "train.warm_start_from"
TEACHER = "train.distill_from"


@dataclass(frozen=True)
class Parent:
    """A loaded parent: where it is, its model config and its weights (NumPy, the model's order)."""

    source: lineage.Source
    model_config: ModelConfig
    weights: list[np.ndarray] = field(repr=False)
    checkpoint: str  # the checkpoint its weights came from

    def entry(self) -> dict[str, Any]:
        return lineage.entry(self.source)


@dataclass(frozen=True)
class Parents:
    """What this start needs: the warm-start parent (None on a resume) and the teacher."""

    warm: Parent | None = None
    teacher: Parent | None = None

    def lineage(self, distill_weight: float) -> dict[str, Any]:
        """The ``parent`` and ``teacher`` entries of the run record and fingerprint."""
        teacher = None if self.teacher is None else {**self.teacher.entry(), "weight": distill_weight}
        return {"parent": self.warm.entry() if self.warm else None, "teacher": teacher}


def checkpoint_prefix(src: lineage.Source, what: str) -> str:
    """An export's ``variables/variables``, or the newest state in a run's ``backup/`` (for a run that
    stopped early, the kept checkpoint of its best evaluation: the weights its fingerprint names)."""
    if src.kind == "export":
        return os.path.join(src.path, "variables", "variables")
    best = (src.fingerprint.get("early_stopping") or {}).get("best_step")
    if best is not None and best != src.fingerprint.get("final_step"):
        return RunDir(src.path).checkpoint_path(int(best))
    latest = tf.train.latest_checkpoint(RunDir(src.path).backup)
    if not latest:
        raise ParentError(f"{what}={src.path!r}: the run has no backup/ checkpoint to take weights from")
    return str(latest)


def _check_spec(src: lineage.Source, what: str, spec_sha256: str) -> None:
    theirs = (src.fingerprint.get("data") or {}).get("spec_sha256")
    if theirs != spec_sha256:
        raise ParentError(f"{what}={src.path!r} was trained on another feature spec (vocabulary): its "
                          f"feature_spec.json sha256 {str(theirs)[:16]}..., this run's {spec_sha256[:16]}...")


def load(path: str, what: str, spec: feature_spec.FeatureSpec, spec_sha256: str) -> Parent:
    """Read, check and restore the parent at ``path`` (see the module docstring)."""
    src = lineage.locate(path, what)
    _check_spec(src, what, spec_sha256)
    try:
        model_config = loading.from_dict(src.config.get("model") or {}, ModelConfig, prefix="model.")
    except ValueError as err:
        raise ParentError(f"{what}={path!r}: its config's model section is invalid ({err})") from None
    prefix = checkpoint_prefix(src, what)
    model = RankingModel(spec, model_config)
    model.build_from_spec()
    try:
        if src.kind == "export":  # the weights in model.variables order (the export holds no Keras model)
            values = read_weights(src.path)
            if [v.shape for v in values] != [tuple(v.shape) for v in model.variables]:
                raise ValueError("its variables do not match its own model config")
            model.set_weights(values)
        else:
            status = tf.train.Checkpoint(model=model).read(prefix)
            status.assert_existing_objects_matched()
            status.expect_partial()  # the optimizer, metrics and signatures beside the model
    except (tf.errors.OpError, ValueError, AssertionError, IndexError) as err:  # IndexError: torn file
        raise ParentError(f"{what}={path!r}: its weights cannot be restored from {prefix} "
                          f"({type(err).__name__}: {str(err).splitlines()[0][:300]})") from None
    weights = model.get_weights()
    digest = fingerprint.weights_digest(weights)
    recorded = src.fingerprint["weights_sha256"]
    if digest != recorded:
        raise ParentError(f"{what}={path!r}: the weights in {prefix} have digest {digest[:16]}..., its "
                          f"fingerprint says {recorded[:16]}... (a corrupt or replaced parent)")
    return Parent(src, model_config, weights, prefix)


def check_same_variables(parent: Parent, child: Any, child_config: ModelConfig) -> None:
    """Refuse a warm-start parent whose variables differ from the child model's, naming the first."""
    hint = lineage.first_difference(loading.to_dict(parent.model_config), loading.to_dict(child_config))
    hint = f" (model config: {hint.replace(' -> ', ' in the parent, ')} in the child)" if hint else ""
    ours = child.weights
    for i, (var, theirs) in enumerate(zip(ours, parent.weights, strict=False)):
        if tuple(var.shape) != theirs.shape:
            raise ParentError(f"{WARM}={parent.source.path!r} has another architecture: variable {i} "
                              f"({var.name}) has shape {list(theirs.shape)} in the parent, "
                              f"{list(var.shape)} in the child{hint}")
    if len(ours) != len(parent.weights):
        raise ParentError(f"{WARM}={parent.source.path!r} has another architecture: {len(parent.weights)} "
                          f"variables in the parent, {len(ours)} in the child{hint}")


def resolve(config: Experiment, spec: feature_spec.FeatureSpec, *, new_run: bool,
            build_model: Any) -> Parents:
    """Load the parents this start needs: the warm-start parent when the run may start new (a resume
    takes its backup), the teacher whenever distillation is on. ``build_model()`` makes a strategy-free
    child model for the variable check."""
    t = config.train
    if not (t.warm_start_from and new_run) and not (t.distill_from and t.distill_weight > 0):
        return Parents()
    spec_sha256 = fingerprint.file_sha256(os.path.join(spec.root, feature_spec.SPEC_FILENAME))
    warm = None
    if t.warm_start_from and new_run:
        warm = load(t.warm_start_from, WARM, spec, spec_sha256)
        check_same_variables(warm, build_model(), config.model)
        if t.warm_start_optimizer:
            if warm.source.kind != "run":
                raise ParentError(f"train.warm_start_optimizer: {WARM}={t.warm_start_from!r} is an export, "
                                  "which carries no optimizer slots; name the run's model_dir")
            theirs = (warm.source.config.get("train") or {}).get("optimizer")
            if theirs != t.optimizer:
                raise ParentError(f"train.warm_start_optimizer: the parent used optimizer {theirs!r}, "
                                  f"this run {t.optimizer!r}")
    teacher = None
    if t.distill_from and t.distill_weight > 0:
        same = warm is not None and os.path.abspath(t.distill_from) == warm.source.path
        teacher = warm if same else load(t.distill_from, TEACHER, spec, spec_sha256)
    return Parents(warm, teacher)


def restore_optimizer(parent: Parent, model: Any, optimizer: Any, learning_rate: float) -> None:
    """A run parent's optimizer slots into ``optimizer`` (with ``model``'s matching variables, already
    set to the parent's weights). The iteration count is the child's global step, so it starts at 0
    (Adam's bias correction starts over), and the learning rate stays the child's."""
    status = tf.train.Checkpoint(model=model, optimizer=optimizer).read(parent.checkpoint)
    status.assert_existing_objects_matched()
    status.expect_partial()
    optimizer.iterations.assign(0)
    optimizer.learning_rate = learning_rate
