"""``recsys reproduce``'s check: can an export be rebuilt from what it carries, here, on this data?

:func:`check` reads the export's ``assets.extra`` (``fingerprint.json``, ``config.yaml``), measures
this environment and the data again, and names each difference, by kind (:data:`KINDS`): the config
(the export's config as this recsys resolves it, against the recorded one), the data (feature spec,
each shard, the stream order version), the code (source commit and dirty flag, source digest,
package version: :mod:`recsys.repro.environment`), the libraries, the devices and op determinism, the
topology (workers, collective) and the export itself (its weights against its fingerprint). A
warm-started export needs its parent: the one given, or the recorded path, and its weights digest must
be the recorded one (:class:`ParentError` otherwise).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import yaml

from recsys.config import loading
from recsys.config.schema import Experiment
from recsys.repro import environment, lineage
from recsys.repro.lineage import ParentError
from recsys.train import fingerprint, run_state

KINDS = ("config", "data", "code", "libraries", "devices", "workers", "export")
PARENT_FIELDS = {"parent": "warm_start_from", "teacher": "distill_from"}


@dataclasses.dataclass(frozen=True)
class Difference:
    """One way the rebuild's inputs differ from the recorded ones; ``kind`` is one of :data:`KINDS`."""

    kind: str
    text: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}"


@dataclasses.dataclass(frozen=True)
class Check:
    """What :func:`check` found: the recorded fingerprint, the config to rebuild with, the differences."""

    export: str
    fingerprint: dict[str, Any]
    config: Experiment  # the export's config, data.spec_dir the given data, parents the found ones
    workers: int
    differences: tuple[Difference, ...]

    def refused(self, allow: tuple[str, ...]) -> list[Difference]:
        """The differences not in ``allow`` (kinds, or "all")."""
        return [d for d in self.differences if "all" not in allow and d.kind not in allow]


def _short(commit: Any) -> str:
    return str(commit)[:12] if commit else "unknown"


def code_differences(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """The code version's differences, named by commit when both sides know it."""
    if not old:
        return ["not recorded in the fingerprint (an export from before recsys recorded its code)"]
    out = []
    if old.get("package_version") != new.get("package_version"):
        out.append(f"recsys {old.get('package_version')} → {new.get('package_version')}")
    if old.get("source_sha256") != new.get("source_sha256"):
        dirty = " (dirty)" if new.get("dirty") else ""
        was = " (dirty)" if old.get("dirty") else ""
        if old.get("source_commit") != new.get("source_commit"):
            out.append(f"source commit {_short(old.get('source_commit'))}{was} → "
                       f"{_short(new.get('source_commit'))}{dirty}")
        else:
            out.append(f"source digest {str(old.get('source_sha256'))[:12]} → {new['source_sha256'][:12]} "
                       f"at commit {_short(new.get('source_commit'))}{was or dirty}")
    return out


def library_differences(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """``name old → new`` for every library (and Python) whose version differs; recsys is the code's."""
    return [f"{name} {old.get(name, 'not recorded')} → {new.get(name, 'not installed')}"
            for name in sorted(set(old) | set(new)) if name != "recsys" and old.get(name) != new.get(name)]


def data_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The feature spec, each shard (by its path under the data dir) and the stream order version."""
    out = []
    if old.get("spec_sha256") != new.get("spec_sha256"):
        out.append("feature_spec.json differs")
    o, n = old.get("shards", {}), new.get("shards", {})
    how = "sha256" if old.get("method", "sha256") == "sha256" else "size or mtime"
    for name in sorted(set(o) | set(n)):
        if name not in n:
            out.append(f"shard {name} missing")
        elif name not in o:
            out.append(f"shard {name} not in the recorded data")
        elif o[name] != n[name]:
            out.append(f"shard {name} {how} differs")
    if old.get("method") != new.get("method"):
        out.append(f"fingerprinted by {old.get('method')} → {new.get('method')} ({new.get('reason', '')})")
    if old.get("stream_version", 1) != new.get("stream_version", 1):
        out.append(f"stream order version {old.get('stream_version', 1)} → {new.get('stream_version', 1)}")
    return out


def _parent(fp: dict[str, Any], role: str, given: str) -> str:
    """The directory of the recorded parent (``role``: parent or teacher); ParentError if none matches."""
    entry = fp.get(role)
    if not entry:
        if given and role == "parent":
            raise ParentError(f"--parent {given}: the export was not warm-started (no recorded parent)")
        return ""
    want = entry.get("weights_sha256")
    path = given if given and role == "parent" else str(entry.get("path") or "")
    flag = "--parent" if given and role == "parent" else f"the recorded {role} path"
    if not path:
        raise ParentError(f"the export's {role} has no recorded path: pass --parent")
    src = lineage.locate(path, flag)
    if src.fingerprint.get("weights_sha256") != want:
        raise ParentError(f"{flag} {path}: weights {str(src.fingerprint.get('weights_sha256'))[:16]} are not "
                          f"the recorded {role}'s {str(want)[:16]}: refused")
    return src.path


def read_export(export: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fingerprint, config mapping) from an export's ``assets.extra``; ValueError if it has none."""
    if not lineage.is_export(export):
        raise ValueError(f"{export} is not a SavedModel export (no {lineage.SAVED_MODEL})")
    fp = lineage.read_fingerprint(export)
    if not fp or "weights_sha256" not in fp:
        raise ValueError(f"{export} carries no fingerprint ({lineage.EXPORT_EXTRA}/{lineage.FINGERPRINT})")
    with open(os.path.join(export, lineage.EXPORT_EXTRA, lineage.CONFIG), encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    return fp, config


def check(export: str, data: str, workers: int = 0, parent: str = "") -> Check:
    """Compare the recorded fingerprint with this environment and ``data`` (see the module docstring).

    ``workers`` 0: the recorded count. Raises ValueError (an unreadable export or config) or
    ParentError (a parent that is missing or not the recorded one)."""
    from recsys.repro.compare import export_weights_digest

    export = os.path.abspath(export)
    fp, recorded_config = read_export(export)
    workers = workers or int(fp.get("num_workers") or 1)
    fields = {f.name for f in dataclasses.fields(Experiment)}
    config: Experiment = loading.from_dict({k: v for k, v in recorded_config.items() if k in fields})
    spec_dir = os.path.abspath(data)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, spec_dir=spec_dir))
    diffs: list[Difference] = []
    if export_weights_digest(export) != fp["weights_sha256"]:
        diffs.append(Difference("export", "its weights are not the ones its fingerprint records"))
    current = loading.to_dict(config)
    if fingerprint.config_digest(current) != fp.get("config_sha256"):
        named = fingerprint.config_differences(fp["config"], current) if fp.get("config") else []
        diffs += [Difference("config", d) for d in named or ["config.yaml differs from the recorded digest"]]
    ident = run_state.identity(config, workers)
    diffs += [Difference("data", d) for d in data_differences(fp.get("data") or {}, ident.data)]
    code, _ = environment.code_version()
    diffs += [Difference("code", d) for d in code_differences(fp.get("code"), code)]
    diffs += [Difference("libraries", d)
              for d in library_differences(fp.get("libraries") or {}, fingerprint.library_versions())]
    devices = environment.devices()
    old_devices = fp.get("devices")
    if old_devices != devices:
        old = f"{old_devices['kind']} ({', '.join(old_devices['names'])})" if old_devices else "not recorded"
        diffs.append(Difference("devices", f"{old} → {devices['kind']} ({', '.join(devices['names'])})"))
    on = config.determinism.op_determinism or environment.op_determinism()
    if "op_determinism" in fp and bool(fp["op_determinism"]) != on:
        diffs.append(Difference("devices", f"op determinism {_on(fp['op_determinism'])} → {_on(on)}"))
    recorded_workers = int(fp.get("num_workers") or 1)
    if workers != recorded_workers:
        diffs.append(Difference("workers", f"workers {recorded_workers} → {workers}"))
    collective = environment.collective(current, workers)
    if fp.get("collective", collective) != collective:
        diffs.append(Difference("workers", f"collective {fp['collective']} → {collective}"))
    parents: dict[str, Any] = {key: path for role, key in PARENT_FIELDS.items()
                               if (path := _parent(fp, role, parent))}
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, **parents))
    return Check(export, fp, config, workers, tuple(diffs))


def _on(flag: Any) -> str:
    return "on" if flag else "off"
