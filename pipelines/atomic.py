"""Atomic file writes: the one helper every package uses (stdlib only, so pipelines, the training
library and the server can all import it).

A write goes to a temporary file in the same directory, is flushed and fsync'ed, then renamed over
the target with ``os.replace`` (atomic on POSIX filesystems), and the directory is fsync'ed so the
rename itself survives a power cut. A reader sees the old contents or the new ones, never a torn file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any


def _fsync_dir(directory: str) -> None:
    """Persist a rename (no-op where directories cannot be opened, e.g. some network filesystems)."""
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _mode_for(path: str) -> int:
    """An existing file's permission bits, else what ``open()`` would create under the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", *, suffix: str = "", durable: bool = True) -> Iterator[IO[Any]]:
    """``with atomic_open(p) as fh: fh.write(...)``: ``p`` appears whole on success, untouched on error.

    ``suffix`` keeps an extension on the temporary name (``np.savez`` appends ``.npz`` otherwise).
    ``durable=False`` skips the fsyncs: still atomic for readers, but a power cut may lose it (a
    liveness file written every few steps needs no disk flush on the training loop's path).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", suffix=suffix, dir=directory)
    try:
        os.chmod(tmp, _mode_for(path))  # mkstemp makes 0600; keep the file's mode, or the umask's
        fh: IO[Any] = os.fdopen(fd, "wb") if mode == "wb" else os.fdopen(fd, "w", encoding="utf-8")
        with fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(directory)


def write_text(path: str, text: str, *, durable: bool = True) -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_open(path, durable=durable) as fh:
        fh.write(text)
    return path


def write_bytes(path: str, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return path


def write_json(path: str, value: Any, *, indent: int | None = 2, sort_keys: bool = False,
               durable: bool = True) -> str:
    """Write ``value`` as JSON (with a final newline) to ``path`` atomically; returns ``path``."""
    return write_text(path, json.dumps(value, indent=indent, sort_keys=sort_keys) + "\n", durable=durable)


def write_with(path: str, writer: Callable[[IO[bytes]], None], *, suffix: str = "") -> str:
    """Atomically write what ``writer(binary_file)`` writes (e.g. ``np.savez_compressed``)."""
    with atomic_open(path, "wb", suffix=suffix) as fh:
        writer(fh)
    return path
