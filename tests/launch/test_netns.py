"""A local job's private network namespace: a server inside that listens on every interface (as
TensorFlow's worker server does) is reached from inside, and from nowhere else: not from this
process's namespace on 127.0.0.1 or the machine's other addresses, not from another job's namespace."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from recsys.launch import netns

# Listens on 0.0.0.0 like a TF worker, checks it is reachable from inside, prints the port, waits.
SERVER = r"""
import socket, sys
srv = socket.socket(); srv.bind(("0.0.0.0", 0)); srv.listen()
port = srv.getsockname()[1]
socket.create_connection(("127.0.0.1", port), timeout=5).close()   # reachable inside the namespace
print(port, flush=True)
sys.stdin.read()
"""
CLIENT = r"""
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
    print("connected")
except OSError as err:
    print(type(err).__name__)
"""


def _addresses() -> list[str]:
    """This machine's IPv4 addresses besides loopback (where another host would connect)."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return [a for a in out if "." in a and not a.startswith("127.")]


def _try(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=5).close()
        return True
    except OSError:
        return False


@pytest.fixture
def namespace():
    """The namespace a job gets here (as root: a plain one; another user gets a user namespace, which a
    root test run does not exercise: forced as root, joining it failed now and then under the full
    suite, cause not found)."""
    try:
        ns = netns.create()
    except netns.IsolationUnavailable as err:
        pytest.skip(str(err))
    yield ns
    ns.close()


def _server(ns: netns.Namespace | None) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, preexec_fn=ns.enter if ns else None)
    return proc, int(proc.stdout.readline())


def test_a_server_in_the_namespace_is_reachable_only_inside(namespace):
    proc, port = _server(namespace)
    try:
        assert not _try("127.0.0.1", port)
        for address in _addresses():
            assert not _try(address, port), address
        other = netns.create()  # another job's namespace
        try:
            probe = subprocess.run([sys.executable, "-c", CLIENT, "127.0.0.1", str(port)],
                                   capture_output=True, text=True, timeout=30, preexec_fn=other.enter)
            assert probe.stdout.strip() == "ConnectionRefusedError"
        finally:
            other.close()
        inside = subprocess.run([sys.executable, "-c", CLIENT, "127.0.0.1", str(port)], capture_output=True,
                                text=True, timeout=30, preexec_fn=namespace.enter)
        assert inside.stdout.strip() == "connected"
    finally:
        proc.stdin.close()
        proc.wait(10)


def test_the_same_server_without_a_namespace_is_reachable():
    """The control: what the test above rules out does happen without the namespace."""
    proc, port = _server(None)
    try:
        assert _try("127.0.0.1", port)
        for address in _addresses():
            assert _try(address, port), address
    finally:
        proc.stdin.close()
        proc.wait(10)


def test_closing_ends_the_holder(namespace):
    assert namespace.holder.poll() is None
    namespace.close()
    assert namespace.holder.poll() is not None
