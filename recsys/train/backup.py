"""The training state on disk: a ``tf.train.CheckpointManager`` over the model, the optimizer (slots
and iteration count = the global step) and nothing else, because the input position and every random
state are functions of the global step (:mod:`recsys.data.stream`).

Saves are atomic: TensorFlow writes a new checkpoint's files under temporary names and only then
rewrites the ``checkpoint`` index file (itself replaced atomically), so a kill during a save leaves
the previous save as the latest. On restore a checkpoint that cannot be read (a torn write on a
filesystem without atomic renames, a truncated file) is skipped for the one before it, with a warning.

Under MultiWorkerMirroredStrategy every worker saves (saving may run collectives); only the chief
writes into ``<model_dir>/backup``, the others into a scratch directory removed at the end. Every worker
restores from the chief's directory.
"""

from __future__ import annotations

import os
import shutil
import sys

from recsys.compat import tf
from recsys.train.run_dir import BACKUP, RunDir
from recsys.train.strategy import Role

KEEP = 2  # the latest save and the one before it (the fallback for a torn latest)


class Backup:
    """Save/restore the training state of one worker (see the module docstring)."""

    def __init__(self, run_dir: RunDir, checkpoint: tf.train.Checkpoint, role: Role,
                 subdir: str = BACKUP, keep: int | None = KEEP) -> None:
        self.directory = run_dir.path(subdir)  # absolute: the index's relative paths resolve once
        self.role = role
        self.checkpoint = checkpoint
        write_dir = self.directory if role.is_chief else run_dir.scratch(subdir, role.task_index)
        self._write_dir = write_dir
        self._manager = tf.train.CheckpointManager(checkpoint, write_dir,
                                                   max_to_keep=keep if role.is_chief else 1)

    def candidates(self) -> list[str]:
        """Saved states in the chief's directory, newest first."""
        state = tf.train.get_checkpoint_state(self.directory)
        if not state:
            return []
        paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
        return [p if os.path.isabs(p) else os.path.join(self.directory, p) for p in reversed(paths)]

    def restore(self) -> str | None:
        """Restore the newest readable state; returns its path (None: nothing saved yet)."""
        errors = []
        for path in self.candidates():
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except (tf.errors.OpError, ValueError, AssertionError, IndexError) as err:  # torn files
                errors.append(f"{path}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
                print(f"warning: backup {path} cannot be restored ({errors[-1]}); trying the one "
                      "before it", file=sys.stderr, flush=True)
                continue
            return path
        if errors:
            raise RuntimeError(f"no backup in {self.directory} can be restored: {'; '.join(errors)}")
        return None

    def save(self, step: int) -> str:
        """Write the state at global ``step`` (every worker calls this)."""
        return self._manager.save(checkpoint_number=step)

    def cleanup(self) -> None:
        """Remove a non-chief worker's scratch copy (the chief's backup stays)."""
        if not self.role.is_chief:
            shutil.rmtree(self._write_dir, ignore_errors=True)
