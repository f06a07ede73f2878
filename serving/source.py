"""The file-system source: lists the integer version directories of a base path, on a poll thread.

As TF Serving's FileSystemStoragePathSource: every ``--file_system_poll_wait_seconds`` (0: once, at
start-up) the aspired versions are re-read from disk and handed to the manager's ``poll`` callback.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def versions_on_disk(base_path: str) -> dict[int, int] | None:
    """Integer-named subdirectories of ``base_path`` -> directory mtime (ns); None if it cannot be listed."""
    try:
        entries = list(os.scandir(base_path))
    except OSError:
        return None
    out = {}
    for e in entries:
        if e.name.isascii() and e.name.isdecimal() and e.is_dir():  # not "١٢" or "²"
            out[int(e.name)] = e.stat().st_mtime_ns
    return out


class FileSystemPoller:
    """Calls ``poll()`` now and then every ``poll_wait_seconds`` on a daemon thread, until stopped."""

    def __init__(self, poll: Callable[[], None], poll_wait_seconds: float):
        self._poll = poll
        self.poll_wait_seconds = poll_wait_seconds
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Poll once in the caller's thread (what is on disk now is loaded), then in the background."""
        self._poll()
        if self.poll_wait_seconds > 0:
            self.thread = threading.Thread(target=self._loop, name="version-poll", daemon=True)
            self.thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_wait_seconds):
            try:
                self._poll()
            except Exception:  # noqa: BLE001 - a poll error must never stop the server
                log.exception("version poll failed")

    def stop(self) -> None:
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
