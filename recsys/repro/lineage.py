"""Lineage of model versions: a parent's files (a finished run's model_dir or an export version dir),
the entry a child records for it, and the chain of parents found on disk (``recsys compare``).

A child's ``fingerprint.json`` carries ``parent`` (its warm-start parent) and ``teacher`` (its
distillation parent), each ``None`` or an :func:`entry`. The chain follows each ``parent.path`` to
that directory's own fingerprint; versions are matched by weights digest, not by path, so a copied or
moved export still matches. No TensorFlow: the trainer (:mod:`recsys.train.parent`) and ``recsys
compare`` use it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import yaml

# The names recsys.train.run_dir.RunDir gives a run's files (repro does not import train), and the
# export's copy of them (recsys.train.end_actions.Export).
FINGERPRINT = "fingerprint.json"
CONFIG = "config.yaml"
EXPORT_EXTRA = "assets.extra"
SAVED_MODEL = "saved_model.pb"
STATE = "train_state.json"
MAX_GENERATIONS = 1000  # a chain longer than this is taken to loop


class ParentError(ValueError):
    """A parent that cannot be used: missing, not a finished run or export, corrupt or mismatched."""


@dataclass(frozen=True)
class Source:
    """A parent's directory: ``kind`` "run" (a finished model_dir) or "export" (a version dir)."""

    path: str  # absolute
    kind: str
    fingerprint: dict[str, Any]
    config: dict[str, Any]

    @property
    def export_path(self) -> str | None:
        """The export this parent is, or the one its run wrote (None: not exported)."""
        return self.path if self.kind == "export" else self.fingerprint.get("export_path")


def is_export(path: str) -> bool:
    return os.path.isfile(os.path.join(path, SAVED_MODEL))


def read_fingerprint(path: str) -> dict[str, Any] | None:
    """The fingerprint of a run dir or an export (its assets.extra copy); None when there is none."""
    meta = os.path.join(path, EXPORT_EXTRA) if is_export(path) else path
    file = os.path.join(meta, FINGERPRINT)
    if not os.path.isfile(file):
        return None
    with open(file, encoding="utf-8") as fh:
        fp: dict[str, Any] = json.load(fh)
    return fp


def locate(path: str, what: str) -> Source:
    """The parent at ``path`` (``what`` names the config field in messages); raises ParentError."""
    if not path:
        raise ParentError(f"{what} is empty")
    root = os.path.abspath(path)
    if not os.path.isdir(root):
        raise ParentError(f"{what}={path!r}: no such directory")
    kind = "export" if is_export(root) else "run"
    meta = os.path.join(root, EXPORT_EXTRA) if kind == "export" else root
    try:
        fp = read_fingerprint(root)
    except (OSError, ValueError) as err:
        raise ParentError(f"{what}={path!r}: {FINGERPRINT} cannot be read ({err})") from None
    if fp is None:
        raise ParentError(f"{what}={path!r} is neither a finished run (no {FINGERPRINT}) nor a recsys "
                          f"export (no {EXPORT_EXTRA}/{FINGERPRINT})")
    if not isinstance(fp, dict) or not isinstance(fp.get("weights_sha256"), str):
        raise ParentError(f"{what}={path!r}: {FINGERPRINT} has no weights digest (corrupt)")
    if kind == "run" and not _finished(root):
        raise ParentError(f"{what}={path!r}: the run is not finished ({STATE}); its fingerprint is of an "
                          "earlier finish and its backup has moved on")
    try:
        with open(os.path.join(meta, CONFIG), encoding="utf-8") as fh:
            config = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as err:
        raise ParentError(f"{what}={path!r}: its {CONFIG} cannot be read ({err})") from None
    if not isinstance(config, dict):
        raise ParentError(f"{what}={path!r}: its {CONFIG} is not a mapping (corrupt)")
    return Source(root, kind, fp, config)


def _finished(run: str) -> bool:
    """The run record says finished (a record that cannot be read: not finished)."""
    try:
        with open(os.path.join(run, STATE), encoding="utf-8") as fh:
            return bool(json.load(fh).get("finished"))
    except (OSError, ValueError, AttributeError):
        return False


def entry(src: Source) -> dict[str, Any]:
    """What a child records about a parent: path, kind, weights and config digests, final step, the
    export and the parent's data windows (its config's ``data.windows``, when it has them)."""
    data = src.config.get("data") or {}
    return {"path": src.path, "kind": src.kind, "weights_sha256": src.fingerprint["weights_sha256"],
            "export_path": src.export_path, "config_sha256": src.fingerprint.get("config_sha256"),
            "final_step": src.fingerprint.get("final_step"), "windows": data.get("windows")}


def first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    """``key: a -> b`` for the first (sorted) dotted key where two nested dicts differ, else None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            found = first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
            if found:
                return found
        return None
    return None if a == b else f"{prefix[:-1]}: {a!r} -> {b!r}"


def ancestors(fp: dict[str, Any]) -> list[dict[str, Any]]:
    """The parent entries up the chain, nearest first, as far as fingerprints are found on disk (a
    missing directory ends the chain; its entry, recorded by the child, is still listed)."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] | None = fp
    while current and isinstance(current.get("parent"), dict) and len(out) < MAX_GENERATIONS:
        parent = current["parent"]
        out.append(parent)
        path = parent.get("path") or ""
        try:
            current = read_fingerprint(path) if os.path.isdir(path) else None
        except (OSError, ValueError):
            current = None
    return out


def _ancestry(child_fp: dict[str, Any] | None, other_digest: str) -> tuple[str, int] | None:
    """("parent"|"teacher", generations) when ``other_digest`` is in the child's chain."""
    if not child_fp:
        return None
    teacher = child_fp.get("teacher")
    if isinstance(teacher, dict) and teacher.get("weights_sha256") == other_digest:
        return "teacher", 1
    for generation, parent in enumerate(ancestors(child_fp), start=1):
        if parent.get("weights_sha256") == other_digest:
            return "parent", generation
    return None


def relation(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """How B relates to A. ``a`` and ``b``: {"weights_sha256": ..., "fingerprint": dict | None}.

    Returns {"relation": "parent" | "ancestor" | "teacher" | "child" | "descendant" | "student" |
    "none", "generations": int, "line": text}; "parent": B is A's warm-start parent.
    """
    for child, other, child_name, other_name, up in (
            (a, b, "A", "B", ("parent", "ancestor", "teacher")),
            (b, a, "B", "A", ("child", "descendant", "student"))):
        found = _ancestry(child.get("fingerprint"), other["weights_sha256"])
        if not found:
            continue
        kind, generations = found
        if kind == "teacher":
            rel = up[2]
            line = f"{other_name} is {child_name}'s distillation teacher"
        elif generations == 1:
            rel = up[0]
            line = f"{other_name} is {child_name}'s parent ({child_name} was warm-started from it)"
        else:
            rel = up[1]
            line = f"{other_name} is {child_name}'s ancestor, {generations} generations back"
        return {"relation": rel, "generations": generations, "line": line}
    return {"relation": "none", "generations": 0,
            "line": "neither is the other's parent, ancestor or teacher (as far as fingerprints on disk "
                    "show)"}
