"""Write the model as a SavedModel in TF Serving's layout, atomically.

``<base_dir>/<model_name>/<version>/`` appears in one rename of a fully written temporary directory,
so a version watcher never loads a half-written model. The model is saved as it is given: it must be
strategy-free (the trainer exports the copy it evaluates, built outside the strategy with the trained
weights), so exporting never runs collective ops.
"""

from __future__ import annotations

import errno
import os
import re
import shutil

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


class Weights(tf.Module):
    """The model's weights as the export's ``model/variables/<i>`` (``model.variables`` order: the keys
    Keras writes). The signatures capture them; tracking the Keras model itself instead would have Keras
    trace every layer's call for its own loader, which TF Serving never uses (about a second per export).
    """

    variables: list = []  # noqa: RUF012 (shadows tf.Module's property: the instance's list is tracked)

    def __init__(self, variables: list[tf.Variable]) -> None:
        super().__init__(name="model_weights")
        self.variables = list(variables)


WEIGHT_KEY = re.compile(r"^model/variables/(\d+)/\.ATTRIBUTES/VARIABLE_VALUE$")


def read_weights(export_dir: str) -> list[np.ndarray]:
    """An export's weights in ``model.variables`` order (every recsys export: :class:`Weights`, or the
    Keras model that earlier versions tracked, which wrote the same keys)."""
    reader = tf.train.load_checkpoint(os.path.join(export_dir, "variables", "variables"))
    index = {int(m.group(1)): k for k in reader.get_variable_to_shape_map() if (m := WEIGHT_KEY.match(k))}
    if sorted(index) != list(range(len(index))) or not index:
        raise ValueError(f"{export_dir} has no complete model/variables/* in its checkpoint: not a recsys "
                         "export")
    return [reader.get_tensor(index[i]) for i in range(len(index))]


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


def _numbered(model_root: str) -> list[int]:
    """The versions under ``model_root``: ASCII-digit directory names (TF Serving's), and the numbers of
    exports still being written there (``.tmp-<version>-<pid>``), which are taken too."""
    try:
        names = os.listdir(model_root)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        number = name.split("-")[1] if name.startswith(".tmp-") and name.count("-") >= 2 else name
        if number.isascii() and number.isdigit():
            out.append(int(number))
    return out


def next_version(model_root: str, version: int = 0) -> int:
    """``version`` if given (must be free), else one more than the largest version there (1 when none).

    Not the clock: two exports in one second, or after the clock went back, never collide or go
    backwards, and a server's ``latest`` policy follows the export order.
    """
    if version:
        if os.path.exists(os.path.join(model_root, str(version))):
            raise FileExistsError(f"export version {version} already exists under {model_root}")
        return version
    return max(_numbered(model_root), default=0) + 1


def _publish(tmp: str, model_root: str, version: int, explicit: bool) -> str:
    """Rename the written ``tmp`` to ``<model_root>/<version>``, never over an existing version.

    An explicit version that appeared meanwhile is a FileExistsError; the default one moves on to the
    next free number (another export took this one while ours was written). ``os.rename`` refuses a
    non-empty target directory, so two exporters racing for one number cannot both win.
    """
    while True:
        final = os.path.join(model_root, str(version))
        taken = os.path.lexists(final)
        if not taken:
            try:
                os.rename(tmp, final)
                return final
            except OSError as err:
                if err.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                    raise
        if explicit:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(f"export version {version} already exists under {model_root}")
        version = max(version, *_numbered(model_root)) + 1


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
    requested = version
    version = next_version(model_root, version)
    tmp = os.path.join(model_root, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    module = tf.Module()
    module.model = Weights(model.variables)
    module.tables = dict(model.transform.tables) if model.transform else {}  # vocabularies: assets
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
    return _publish(tmp, model_root, version, explicit=bool(requested))


__all__ = ["export_saved_model", "check_strategy_free", "next_version", "SPEC_FILENAME"]
