"""The run record of a model_dir (``train_state.json``): what it was started with, where it resumed,
whether it finished. It decides what a (re)started ``recsys train``/``recsys submit`` does:

- nothing recorded: a new run;
- finished with the same config and data: nothing to do (exit 0), unless ``--overwrite``;
- unfinished: resume from the backup, but refuse when the config, the data or the worker count
  differ from the recorded ones (naming each difference), unless that change is explicitly allowed.

No TensorFlow here: the supervisor checks a model_dir before it starts any worker.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import pipelines.feature_spec as feature_spec
from pipelines import atomic
from recsys.config import loading
from recsys.config.schema import Experiment
from recsys.data.order import STREAM_VERSION
from recsys.train import fingerprint
from recsys.train.run_dir import NotARun, RunDir

CHANGES = ("config", "data", "workers")  # what --allow_resume_change may name


# The exit code of a refused start (EX_CONFIG): a restart would fail the same way, so the supervisor
# does not retry it.
EXIT_REFUSED = 78


class ResumeRefused(ValueError):
    """A restart whose config, data or worker count differ from the run it would resume."""


@dataclass
class RunIdentity:
    """What a run is a function of: config digest (and the dict), data fingerprint, worker count, and
    its parents (``lineage``: the warm-start parent when the run starts new, the distillation teacher;
    :meth:`recsys.train.parent.Parents.lineage`)."""

    config: dict[str, Any]
    data: dict[str, Any]
    num_workers: int
    config_sha256: str = ""
    lineage: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.config_sha256 = fingerprint.config_digest(self.config)


@dataclass
class RunState:
    """The contents of ``train_state.json``."""

    config_sha256: str
    config: dict[str, Any]
    data: dict[str, Any]
    num_workers: int
    started: float
    resumes: list[dict[str, Any]] = field(default_factory=list)
    allowed_changes: list[str] = field(default_factory=list)
    finished: bool = False
    final_step: int = 0
    weights_sha256: str = ""
    lineage: dict[str, Any] = field(default_factory=dict)  # recorded at the start, for the fingerprint
    # With train.early_stopping_patience: the stopping and the best (kept) step, whether it hit the maximum
    early_stopping: dict[str, Any] = field(default_factory=dict)


def identity(config: Experiment, num_workers: int, lineage: dict[str, Any] | None = None) -> RunIdentity:
    """What a run of ``config`` on ``num_workers`` workers (from the parents in ``lineage``) is a
    function of."""
    spec = feature_spec.load(config.data.spec_dir)
    # Every file training may read: the tf.Example shards of the selected time windows (data.windows;
    # all when none are selected) and the eval split, and, when the spec names it, the columnar copy of
    # those windows that the stream reads by default (covered whatever data.format says, so that
    # neutral setting stays neutral for a resume).
    windows = config.data.windows
    patterns = [*spec.train_patterns(windows), spec.data.eval_pattern, *spec.columnar_patterns(windows)]
    data = fingerprint.data_fingerprint(spec.root, patterns)
    data["windows"] = list(windows)  # the time windows trained on ([]: the whole train split)
    data["stream_version"] = STREAM_VERSION
    return RunIdentity(loading.to_dict(config), data, num_workers, lineage=dict(lineage or {}))


def load(model_dir: str) -> RunState | None:
    path = RunDir(model_dir).state_file
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fh:
        d = json.load(fh)
    return RunState(**{k: d[k] for k in RunState.__dataclass_fields__ if k in d})


def save(model_dir: str, state: RunState) -> None:
    """Atomic write (a kill leaves the previous record)."""
    atomic.write_json(RunDir(model_dir).state_file, state.__dict__)


def differences(state: RunState, ident: RunIdentity) -> dict[str, list[str]]:
    """What differs between the recorded run and this start, by kind (see :data:`CHANGES`)."""
    out: dict[str, list[str]] = {}
    if state.config_sha256 != ident.config_sha256:
        # [] when only fields added since the run was recorded differ, at their defaults: no change
        changed = fingerprint.config_differences(state.config, ident.config)
        if changed:
            out["config"] = changed
    old, new = state.data, ident.data
    if old.get("digest") != new.get("digest"):
        lines = []
        if old.get("spec_sha256") != new.get("spec_sha256"):
            lines.append("feature_spec.json differs")
        o, n = old.get("shards", {}), new.get("shards", {})
        lines += [f"shard {k} {'added' if k not in o else 'removed' if k not in n else 'changed'}"
                  for k in sorted(set(o) | set(n)) if o.get(k) != n.get(k)]
        out["data"] = lines or ["the data fingerprint differs"]
    old_order, new_order = old.get("stream_version", 1), new.get("stream_version", 1)
    if old_order != new_order:
        out.setdefault("data", []).append(f"input stream order v{old_order} -> v{new_order} (a recsys "
                                          "upgrade: the same steps would see other examples)")
    # The teacher is read again on every start; {} (the supervisor's check) has not read it.
    old_teacher, new_teacher = (_digest(x.lineage.get("teacher")) for x in (state, ident))
    if ident.lineage and old_teacher != new_teacher:
        out.setdefault("config", []).append(f"distillation teacher weights {old_teacher} -> {new_teacher}")
    if state.num_workers != ident.num_workers:
        out["workers"] = [f"{state.num_workers} worker(s) -> {ident.num_workers}"]
    return out


def _digest(entry: Any) -> str | None:
    return entry.get("weights_sha256") if isinstance(entry, dict) else None


def prepare(model_dir: str, ident: RunIdentity, *, has_backup: bool, overwrite: bool = False,
            allow: tuple[str, ...] = (), write: bool = True) -> tuple[str, RunState | None]:
    """Decide what this start does: ``("new"|"resume"|"finished", state)``; raises ResumeRefused.

    ``write`` (the chief; False on other workers and in dry checks) records the decision.
    """
    unknown = sorted(set(allow) - set(CHANGES))
    if unknown:
        raise ValueError(f"unknown resume change(s) {unknown}; allowed: {list(CHANGES)}")
    state = load(model_dir)
    if overwrite and write:
        try:
            clear(model_dir)
        except NotARun as err:
            raise ResumeRefused(str(err)) from None
        state = None
    elif overwrite:
        state = None
    if state is None or (not state.finished and not has_backup):
        state = RunState(ident.config_sha256, ident.config, ident.data, ident.num_workers, time.time(),
                         lineage=ident.lineage)
        if write:
            save(model_dir, state)
        return "new", state
    diff = differences(state, ident)
    if state.finished and not diff:
        return "finished", state
    refused = {k: v for k, v in diff.items() if k not in allow}
    if refused:
        what = "; ".join(f"{k}: {', '.join(v)}" for k, v in refused.items())
        verb = "is finished" if state.finished else "would resume"
        hint = ("--overwrite starts over" if state.finished else
                "--overwrite starts over; --allow_resume_change=" + ",".join(refused) + " resumes anyway")
        raise ResumeRefused(f"{model_dir} holds a run that {verb} with a different setup ({what}); {hint}")
    if state.finished:  # allowed changes to a finished run: train on from its final state
        state.finished = False
    if write:
        state.allowed_changes = sorted(set(state.allowed_changes) | set(diff))
        save(model_dir, state)
    return "resume", state


def record_resume(model_dir: str, state: RunState, step: int, ident: RunIdentity,
                  changes: list[str]) -> None:
    """Append one restart (step, worker count, allowed changes) to the record (chief only)."""
    state.resumes.append({"step": int(step), "time": time.time(), "num_workers": ident.num_workers,
                          "changes": changes})
    save(model_dir, state)


def clear(model_dir: str) -> None:
    """Remove every output of a previous run (``--overwrite``); other files stay."""
    RunDir(model_dir).clear()
