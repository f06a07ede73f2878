"""Admission by memory: the decoded input bytes of all requests being served at once are capped.

Each request is capped on its own (:class:`serving.inference.RequestLimits`); this caps their sum, so
many concurrent large requests are refused (RESOURCE_EXHAUSTED, HTTP 429) instead of growing the
server's memory until it is killed. A single request is always admitted when nothing else is held.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from serving.errors import exhausted

DEFAULT_MAX_INFLIGHT_BYTES = 512 << 20


class InFlightBytes:
    """A counter of decoded bytes held by requests in progress, refusing what would exceed ``limit``."""

    def __init__(self, limit: int = DEFAULT_MAX_INFLIGHT_BYTES):
        self.limit = limit
        self.used = 0
        self.refused = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        """Hold ``nbytes`` for the block, or raise RESOURCE_EXHAUSTED when the budget is spent."""
        with self._lock:
            if self.used and self.used + nbytes > self.limit:
                self.refused += 1
                raise exhausted(
                    f"the server is busy: requests in progress hold {self.used} bytes of inputs and this "
                    f"one needs {nbytes}, over the limit of {self.limit} (--max_inflight_decoded_bytes); "
                    "retry later"
                )
            self.used += nbytes
        try:
            yield
        finally:
            with self._lock:
                self.used -= nbytes
