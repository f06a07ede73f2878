"""Model fingerprints: what a trained model is a function of, and a digest of what came out.

- :func:`weights_digest` (from :mod:`recsys.repro.digest`): SHA-256 over the model's variables,
  independent of variable names and order, so the trainer's in-memory model and its SavedModel
  export give the same digest.
- :func:`config_digest`: SHA-256 of the resolved config without the fields that cannot change the
  model (output, logging, backup interval, the data path: the data fingerprint covers the data),
  which the schema declares with ``neutral(...)``.
- :func:`data_fingerprint`: the feature spec's digest plus a digest per shard (content, or size and
  mtime above a size limit, with the reason recorded).

Pure Python + NumPy: ``recsys compare`` and the supervisor use it without the training stack.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.metadata
import json
import os
import platform
from collections.abc import Iterable, Mapping
from typing import Any

from recsys.config.schema import neutral_fields
from recsys.repro.digest import tensor_digest as tensor_digest  # re-exported: the trainer's digest
from recsys.repro.digest import weights_digest as weights_digest

# Config fields that cannot change the model, as declared on the fields (recsys.config.schema.neutral).
NEUTRAL_FIELDS = neutral_fields()
LIBRARIES = ("tensorflow", "tf-keras", "tensorflow-recommenders", "numpy", "apache-beam",
             "tensorflow-serving-api", "recsys")
HASH_LIMIT_BYTES = 2 << 30  # shards past this total are fingerprinted by size and mtime
FINGERPRINT_FILE = "fingerprint.json"  # in the model_dir at the end of a run; the supervisor reads it


def _drop(d: dict[str, Any], dotted: str) -> None:
    *path, last = dotted.split(".")
    for key in path:
        d = d.get(key, {})
    d.pop(last, None)


def model_relevant_config(config: Mapping[str, Any],
                          neutral: Iterable[str] = NEUTRAL_FIELDS) -> dict[str, Any]:
    """The config dict without the ``neutral`` fields (:data:`NEUTRAL_FIELDS`: the schema's)."""
    d = json.loads(json.dumps(config))  # a deep copy
    for key in neutral:
        _drop(d, key)
    return d


def config_digest(config: Mapping[str, Any], neutral: Iterable[str] = NEUTRAL_FIELDS) -> str:
    """SHA-256 of :func:`model_relevant_config` as canonical JSON."""
    text = json.dumps(model_relevant_config(config, neutral), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


_MISSING = object()


def config_defaults() -> dict[str, Any]:
    """Every config field at its default, as JSON (what a recorded config's missing field stands for)."""
    from pipelines.typed import to_dict
    from recsys.config.schema import Experiment

    return json.loads(json.dumps(to_dict(Experiment())))


def dict_differences(old: Mapping[str, Any], new: Mapping[str, Any], defaults: Mapping[str, Any],
                     prefix: str = "") -> list[str]:
    """``key: old -> new`` for every leaf that differs (dotted keys, sorted, after ``prefix``).

    A key ``old`` lacks whose ``new`` value is its default in ``defaults`` is no difference: a recsys
    upgrade that adds a field (``data.windows``, ``train.warm_start_from``) changes nothing recorded
    before it."""
    out: list[str] = []

    def walk(a: Any, b: Any, default: Any, key: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            d = default if isinstance(default, dict) else {}
            for k in sorted(set(a) | set(b)):
                walk(a.get(k, _MISSING), b.get(k, _MISSING), d.get(k, _MISSING), f"{key}{k}.")
        elif a is _MISSING and b == default:
            return
        elif a != b:
            shown = [None if x is _MISSING else x for x in (a, b)]
            out.append(f"{key[:-1]}: {shown[0]!r} -> {shown[1]!r}")

    walk(dict(old), dict(new), dict(defaults), f"{prefix}." if prefix else "")
    return out


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``key: old -> new`` for every model-relevant field that differs (dotted keys); a field the
    recorded config lacks, at its default in the new one, is no difference, so a run recorded before
    an upgrade that added it still resumes (:func:`dict_differences`)."""
    return dict_differences(model_relevant_config(old), model_relevant_config(new), config_defaults())


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def data_fingerprint(spec_dir: str, patterns: Iterable[str],
                     hash_limit_bytes: int = HASH_LIMIT_BYTES) -> dict[str, Any]:
    """Spec digest and one entry per shard matching ``patterns`` (relative to ``spec_dir``).

    Shards are hashed when their total size is at most ``hash_limit_bytes``; above it (or for
    non-local paths) they are identified by size and mtime, and ``method`` says why.
    """
    spec_path = os.path.join(spec_dir, "feature_spec.json")
    out: dict[str, Any] = {"spec_sha256": file_sha256(spec_path) if os.path.isfile(spec_path) else None}
    if "://" in spec_dir:
        out.update(method="none", reason="remote data: shards are not fingerprinted", shards={})
        return out
    files = sorted({f for p in patterns for f in glob.glob(os.path.join(spec_dir, p))})
    total = sum(os.path.getsize(f) for f in files)
    hashed = total <= hash_limit_bytes
    out["method"] = "sha256" if hashed else "size+mtime"
    if not hashed:
        out["reason"] = f"{total} bytes of shards exceed the hashing limit of {hash_limit_bytes}"
    shards = {}
    for f in files:
        rel = os.path.relpath(f, spec_dir)
        st = os.stat(f)
        shards[rel] = file_sha256(f) if hashed else f"{st.st_size}:{int(st.st_mtime)}"
    out["shards"] = shards
    out["digest"] = hashlib.sha256(json.dumps([out["spec_sha256"], shards], sort_keys=True).encode()
                                   ).hexdigest()
    return out


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that decide the numbers, plus Python's."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
