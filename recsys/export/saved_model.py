"""Write the model as a SavedModel in TF Serving's layout, atomically.

``<base_dir>/<model_name>/<version>/`` appears in one rename of a fully written temporary directory,
so a version watcher never loads a half-written model. The model is saved as it is given: it must be
strategy-free (the trainer exports the copy it evaluates, built outside the strategy with the trained
weights), so exporting never runs collective ops.
"""

from __future__ import annotations

import os
import shutil
import time

import numpy as np

from pipelines.feature_spec import SPEC_FILENAME, FeatureSpec
from recsys.compat import tf
from recsys.export.signatures import make_signatures
from recsys.export.warmup import write_warmup
from recsys.models.activation import portable_kernels
from recsys.models.ranking import RankingModel

REGRESS_METHOD = "tensorflow/serving/regress"


def check_strategy_free(model: RankingModel) -> None:
    """Refuse a model whose variables belong to a distribution strategy (saving it runs collectives)."""
    if tf.distribute.has_strategy():
        raise RuntimeError("export the model outside the distribution strategy's scope")
    if any(isinstance(v, tf.distribute.DistributedValues) for v in model.variables):
        raise RuntimeError("export a strategy-free copy of the model (RankingTask.plain_copy), not the "
                           "model built under the distribution strategy")


def _set_method_name(export_dir: str, signature: str, method: str) -> None:
    """Rewrite a signature's method_name (TF2 saving always writes .../predict)."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(export_dir, "saved_model.pb")
    sm = saved_model_pb2.SavedModel()
    with open(path, "rb") as fh:
        sm.ParseFromString(fh.read())
    for meta in sm.meta_graphs:
        if signature in meta.signature_def:
            meta.signature_def[signature].method_name = method
    with open(path, "wb") as fh:
        fh.write(sm.SerializeToString())


def next_version(model_root: str, version: int = 0) -> int:
    """``version`` if given (must be free), else the current epoch second (bumped until free)."""
    if version:
        if os.path.exists(os.path.join(model_root, str(version))):
            raise FileExistsError(f"export version {version} already exists under {model_root}")
        return version
    version = int(time.time())
    while os.path.exists(os.path.join(model_root, str(version))):
        version += 1
    return version


def export_saved_model(
    model: RankingModel,
    spec: FeatureSpec,
    base_dir: str,
    model_name: str = "ranker",
    version: int = 0,
    warmup_requests: list[dict[str, np.ndarray]] | None = None,
    extra_files: dict[str, str] | None = None,
) -> str:
    """Export to ``<base_dir>/<model_name>/<version>`` and return that path.

    ``extra_files`` (name -> source path) are copied into ``assets.extra`` with the feature spec.
    ``model`` is saved as it is, and must be strategy-free: a model trained under a strategy is
    exported through its copy (:meth:`recsys.train.task.RankingTask.plain_copy`, on every worker).
    """
    check_strategy_free(model)
    model_root = os.path.join(base_dir, model_name)
    os.makedirs(model_root, exist_ok=True)
    version = next_version(model_root, version)
    tmp = os.path.join(model_root, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    module = tf.Module()
    module.model = model  # architecture only: no optimizer or metrics to leave out
    with portable_kernels():  # stock TF Serving has no XLA JIT: every traced function stays portable
        signatures = make_signatures(model, spec)
        tf.saved_model.save(module, tmp, signatures=signatures)
    _set_method_name(tmp, "regress", REGRESS_METHOD)
    extra = os.path.join(tmp, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    spec.save(extra)
    for name, src in (extra_files or {}).items():
        shutil.copyfile(src, os.path.join(extra, name))
    if warmup_requests:
        write_warmup(tmp, model_name, warmup_requests)
    final = os.path.join(model_root, str(version))
    os.rename(tmp, final)
    return final


__all__ = ["export_saved_model", "check_strategy_free", "next_version", "SPEC_FILENAME"]
