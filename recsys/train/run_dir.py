"""The one owner of a run's model_dir: every path in it, the fingerprint and the eval files.

The trainer, the run record (:mod:`recsys.train.run_state`), the supervisor (``recsys submit``),
``recsys compare`` and the study ask a :class:`RunDir` for a path instead of joining names, so a
file's name lives here only. The directory is made absolute once, at construction: a relative
``--model_dir`` then means the same directory whichever path TensorFlow later joins it to (the
checkpoint index stores paths relative to the backup directory).

No TensorFlow here (the supervisor imports none); NumPy only inside the eval-file methods. Every
write goes through :mod:`pipelines.atomic`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import Any

from pipelines import atomic

BACKUP = "backup"
CHECKPOINTS = "checkpoints"
LOGS = "logs"
EVALS = "evals"
VISITS = "visits"
EXPORT = "export"
STATE_FILE = "train_state.json"
STATUS_FILE = "status.json"
FINGERPRINT_FILE = "fingerprint.json"
CONFIG_FILE = "config.yaml"  # == recsys.config.loading.RESOLVED_FILENAME
EVAL_PREDICTIONS = "eval_predictions.npz"
SUBMIT = "submit"  # the supervisor's logs (recsys submit's default --logs_dir)
LOCK = ".lock"  # held by a running job's chief (recsys.train.run_lock); never cleared
# Everything a run writes into its model_dir: what clear() (--overwrite) removes; other files stay.
# The supervisor's logs (<model_dir>/submit) are the submitter's to clear, not the trainer's.
RUN_OUTPUTS = (BACKUP, CHECKPOINTS, LOGS, EVALS, VISITS, EXPORT, STATE_FILE, STATUS_FILE,
               FINGERPRINT_FILE, CONFIG_FILE, EVAL_PREDICTIONS)
_EVAL_NAME = re.compile(r"^step-(\d{9})\.npz$")
_BACKUP_NAME = re.compile(r'^model_checkpoint_path:\s*"(?:.*/)?ckpt-(\d+)"')

Evaluation = tuple[int, Any, Any, dict[str, Any]]  # (step, predictions, labels, metrics)


class NotARun(ValueError):
    """``--overwrite`` into a directory that holds files but no recsys run: nothing is deleted."""


class RunDir:
    """Paths and files of one model_dir (absolute; see the module docstring)."""

    def __init__(self, model_dir: str | os.PathLike[str]) -> None:
        self.root = os.path.abspath(os.fspath(model_dir))

    def __repr__(self) -> str:
        return f"RunDir({self.root!r})"

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    # -- directories and files --------------------------------------------------------------
    @property
    def backup(self) -> str:
        return self.path(BACKUP)

    @property
    def checkpoints(self) -> str:
        return self.path(CHECKPOINTS)

    @property
    def logs(self) -> str:
        return self.path(LOGS)

    @property
    def evals(self) -> str:
        return self.path(EVALS)

    @property
    def visits(self) -> str:
        return self.path(VISITS)

    @property
    def export(self) -> str:
        return self.path(EXPORT)

    @property
    def state_file(self) -> str:
        return self.path(STATE_FILE)

    @property
    def status_file(self) -> str:
        return self.path(STATUS_FILE)

    @property
    def fingerprint_file(self) -> str:
        return self.path(FINGERPRINT_FILE)

    @property
    def config_file(self) -> str:
        return self.path(CONFIG_FILE)

    @property
    def lock_file(self) -> str:
        return self.path(LOCK)

    @property
    def eval_predictions(self) -> str:
        return self.path(EVAL_PREDICTIONS)

    def scratch(self, subdir: str, task_index: int) -> str:
        """A non-chief worker's throwaway copy of ``subdir`` (removed at the end of its run)."""
        return self.path(f".{subdir}-worker-{task_index}")

    def visit_log(self, task_index: int) -> str:
        return os.path.join(self.visits, f"worker-{task_index}.jsonl")

    def eval_file(self, step: int) -> str:
        return os.path.join(self.evals, f"step-{step:09d}.npz")

    # -- the backup ---------------------------------------------------------------------------
    def has_backup(self) -> bool:
        """Whether the backup holds a saved state: its ``checkpoint`` index names one (plain Python:
        the index is a text proto with a ``model_checkpoint_path`` line)."""
        try:
            with open(os.path.join(self.backup, "checkpoint"), encoding="utf-8") as fh:
                return any(line.startswith("model_checkpoint_path:") for line in fh)
        except OSError:
            return False

    def backup_step(self) -> int | None:
        """The global step of the latest backup (its ``ckpt-<step>`` name in the index), or None."""
        try:
            with open(os.path.join(self.backup, "checkpoint"), encoding="utf-8") as fh:
                for line in fh:
                    match = _BACKUP_NAME.match(line)
                    if match:
                        return int(match.group(1))
        except OSError:
            pass
        return None

    # -- the fingerprint ----------------------------------------------------------------------
    def read_fingerprint(self) -> dict[str, Any] | None:
        """``fingerprint.json`` (written at the end of a run), or None when absent or unreadable."""
        try:
            with open(self.fingerprint_file, encoding="utf-8") as fh:
                value = json.load(fh)
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def write_fingerprint(self, fp: dict[str, Any]) -> str:
        os.makedirs(self.root, exist_ok=True)
        return atomic.write_json(self.fingerprint_file, fp)

    # -- evaluations ----------------------------------------------------------------------------
    def write_eval(self, step: int, predictions: Any, labels: Any, metrics: dict[str, Any],
                   validation: tuple[Any, Any] | None = None,
                   validation_metrics: dict[str, Any] | None = None) -> str:
        """``evals/step-<step>.npz``: predictions, labels, metrics (JSON) and with a validation split
        also val_predictions, val_labels and val_metrics (JSON: early stopping reads them back)."""
        import numpy as np

        arrays: dict[str, Any] = {"predictions": predictions, "labels": labels,
                                  "metrics": json.dumps(metrics)}
        if validation is not None:
            arrays.update(val_predictions=validation[0], val_labels=validation[1])
        if validation_metrics is not None:
            arrays.update(val_metrics=json.dumps(validation_metrics))
        os.makedirs(self.evals, exist_ok=True)
        return atomic.write_with(self.eval_file(step), lambda fh: np.savez_compressed(fh, **arrays),
                                 suffix=".npz")

    def has_eval(self, step: int) -> bool:
        return os.path.exists(self.eval_file(step))

    def _eval_files(self) -> list[tuple[int, str]]:
        names = sorted(os.listdir(self.evals)) if os.path.isdir(self.evals) else []
        return [(int(m.group(1)), os.path.join(self.evals, n)) for n in names if (m := _EVAL_NAME.match(n))]

    def load_evals(self) -> list[Evaluation]:
        """Every saved evaluation (step order): (step, predictions, labels, metrics)."""
        import numpy as np

        out = []
        for step, path in self._eval_files():
            with np.load(path) as z:
                out.append((step, z["predictions"], z["labels"], json.loads(str(z["metrics"]))))
        return out

    def load_validation(self) -> tuple[list[tuple[int, Any]], Any]:
        """Every saved evaluation's validation predictions [(step, predictions)] and the labels."""
        import numpy as np

        out, labels = [], None
        for step, path in self._eval_files():
            with np.load(path) as z:
                if "val_predictions" in z:
                    out.append((step, z["val_predictions"]))
                    labels = z["val_labels"]
        return out, labels

    def load_validation_metrics(self) -> list[tuple[int, dict[str, Any]]]:
        """Every saved evaluation's validation metrics [(step, metrics)] (step order)."""
        import numpy as np

        out = []
        for step, path in self._eval_files():
            with np.load(path) as z:
                if "val_metrics" in z:
                    out.append((step, json.loads(str(z["val_metrics"]))))
        return out

    def checkpoint_path(self, step: int) -> str:
        """The kept checkpoint of the evaluation at ``step`` (``train.checkpoint``; the manager's
        ``ckpt-<number>`` prefix)."""
        return os.path.join(self.checkpoints, f"ckpt-{step}")

    def write_eval_predictions(self, arrays: dict[str, Any]) -> str:
        """``eval_predictions.npz``: every evaluation's predictions in one file (the study reads it)."""
        import numpy as np

        return atomic.write_with(self.eval_predictions, lambda fh: np.savez_compressed(fh, **arrays),
                                 suffix=".npz")

    # -- clearing ---------------------------------------------------------------------------
    def holds_run(self) -> bool:
        """Whether this is a run's directory (its ``train_state.json``), absent or empty (but for the
        supervisor's logs and the lock): where ``--overwrite`` may delete."""
        return (not os.path.exists(self.root) or os.path.isfile(self.state_file)
                or (os.path.isdir(self.root) and not set(os.listdir(self.root)) - {SUBMIT, LOCK}))

    def clear(self) -> None:
        """Remove every output of a previous run (:data:`RUN_OUTPUTS`, ``--overwrite``); other files
        stay. Raises :class:`NotARun` (deleting nothing) unless :meth:`holds_run`: a user's
        ``config.yaml`` in some other directory is not recsys's to delete."""
        if not self.holds_run():
            entries = sorted(os.listdir(self.root)) if os.path.isdir(self.root) else []
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise NotARun(f"--overwrite refused: {self.root} holds no recsys run (no {STATE_FILE}) and is "
                          f"not empty ({shown}); nothing was deleted: pick another --model_dir")
        for name in RUN_OUTPUTS:
            path = self.path(name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
