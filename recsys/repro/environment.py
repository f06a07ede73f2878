"""What a run's numbers depend on beyond its config and data: the code, the devices, the topology.

:func:`environment` is what the trainer adds to ``fingerprint.json`` and what ``recsys reproduce``
measures again before a rebuild: the code version (package version, the source commit and a dirty
flag when the package is a git checkout, and always a digest of the ``recsys/``, ``pipelines/`` and
``serving/`` sources), the device kind and names, op determinism, the worker count, the
collective and the command line. A field that cannot be known is ``None``, and ``unknown`` names it
with the reason. TensorFlow is imported only to list the devices.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
from typing import Any

import recsys

SOURCE_PACKAGES = ("recsys", "pipelines", "serving")
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(recsys.__file__)))


def source_digest(root: str = SOURCE_ROOT) -> str:
    """SHA-256 over the relative path and bytes of every ``.py`` file of the three packages."""
    h = hashlib.sha256()
    for package in SOURCE_PACKAGES:
        base = os.path.join(root, package)
        files = sorted(os.path.join(d, f) for d, subdirs, names in os.walk(base)
                       if "__pycache__" not in d for f in names if f.endswith(".py"))
        for path in files:
            h.update(os.path.relpath(path, root).encode() + b"\0")
            with open(path, "rb") as fh:
                h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()


def _git(root: str, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version(root: str = SOURCE_ROOT) -> tuple[dict[str, Any], dict[str, str]]:
    """(the code version, {field: why it is unknown}) of the sources imported from ``root``."""
    unknown: dict[str, str] = {}
    try:
        package: str | None = importlib.metadata.version("recsys")
    except importlib.metadata.PackageNotFoundError:
        package = None
        unknown["code.package_version"] = "the recsys distribution is not installed (run from a source tree)"
    commit = dirty = None
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None:
        unknown["code.source_commit"] = f"{root} is not a git checkout (or git is not installed)"
    elif os.path.realpath(top) != os.path.realpath(root):
        unknown["code.source_commit"] = f"{root} is inside another git repository ({top}), not a checkout"
    else:
        commit = _git(root, "rev-parse", "HEAD")
        status = _git(root, "status", "--porcelain", "--", *SOURCE_PACKAGES)
        dirty = None if status is None else bool(status)
        if commit is None or dirty is None:
            unknown["code.source_commit"] = "git could not read the checkout's HEAD or status"
    if dirty is None:
        unknown["code.dirty"] = unknown.get("code.source_commit", "no source commit")
    return ({"package_version": package, "source_commit": commit, "dirty": dirty,
             "source_sha256": source_digest(root)}, unknown)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def devices() -> dict[str, Any]:
    """The device kind (``GPU`` when TensorFlow sees one, else ``CPU``) and the device names."""
    from recsys.compat import tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [str(tf.config.experimental.get_device_details(g).get("device_name", g.name)) for g in gpus]
        return {"kind": "GPU", "names": names}
    return {"kind": "CPU", "names": [_cpu_name()]}


def op_determinism(config: dict[str, Any] | None = None) -> bool:
    """Whether TensorFlow's op determinism is on: the trainer enables it from
    ``determinism.op_determinism`` (``recsys/train/determinism.py``), and TF reads
    ``TF_DETERMINISTIC_OPS`` from the environment (TF has no public getter of the process's state)."""
    from_config = bool((config or {}).get("determinism", {}).get("op_determinism", False))
    return from_config or os.environ.get("TF_DETERMINISTIC_OPS", "").lower() in ("1", "true")


def collective(config: dict[str, Any], num_workers: int) -> str:
    """The all-reduce of a run: none in process, else the configured implementation."""
    if num_workers <= 1:
        return "none"
    return str(config.get("determinism", {}).get("collective", "AUTO"))


def command() -> str:
    """This process's command line, as typed for a ``recsys`` subcommand (the dispatcher renames argv[0])."""
    if sys.argv and sys.argv[0].startswith("recsys.cli"):
        return shlex.join(["recsys", *sys.argv[1:]])
    return shlex.join(sys.argv)


def environment(config: dict[str, Any], num_workers: int) -> dict[str, Any]:
    """The fingerprint fields of this process's code, devices and topology (see the module docstring)."""
    code, unknown = code_version()
    return {"code": code, "devices": devices(), "op_determinism": op_determinism(config),
            "num_workers": num_workers, "collective": collective(config, num_workers), "command": command(),
            "unknown": unknown}
