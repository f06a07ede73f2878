"""One job per model_dir: the chief holds ``<model_dir>/.lock`` (``fcntl.flock`` on a descriptor kept
open for the run's life) and writes its pid and host into it. A second job's chief is refused, naming
the holder; the kernel drops the lock when its holder dies, so a stale lock (a killed job) is simply
taken over. flock is advisory and per host: it does not guard a model_dir on a network filesystem
shared by jobs on different machines. No TensorFlow here.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time

from recsys.train.run_dir import RunDir
from recsys.train.run_state import ResumeRefused


class RunLocked(ResumeRefused):
    """The model_dir is in use by another live job (a refused start: retrying fails the same way)."""


class RunLock:
    """The lock of one model_dir (see the module docstring)."""

    def __init__(self, run_dir: RunDir) -> None:
        self.path = run_dir.lock_file
        self._fd: int | None = None

    def holder(self) -> dict[str, object]:
        """What the lock file says about its (last) holder: pid, host, since; {} when unreadable."""
        try:
            with open(self.path, encoding="utf-8") as fh:
                value = json.load(fh)
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def acquire(self, wait: float = 5.0) -> None:
        """Take the lock, waiting up to ``wait`` s for a holder that is exiting (a restart's old chief);
        raises :class:`RunLocked` naming the holder's pid and host."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    h = self.holder()
                    raise RunLocked(f"{os.path.dirname(self.path)} is in use by another job: pid "
                                    f"{h.get('pid', '?')} on host {h.get('host', '?')} holds {self.path}; "
                                    "wait for it to end or pick another --model_dir") from None
                time.sleep(0.1)
        # Written in place, not replaced: the lock belongs to this inode.
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode() + b"\n", 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
