"""Free TCP ports on 127.0.0.1 for the workers of a local cluster."""

from __future__ import annotations

import socket


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports that were free a moment ago (all bound at once, then released).

    There is a small race (another process may grab a port before the worker binds it); the
    supervisor picks new ports on every restart, so a lost race costs one attempt, not the job.
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
