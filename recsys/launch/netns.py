"""A private network namespace for the workers of one local job: their TensorFlow servers cannot be
reached from the network, nor from other processes of this machine.

TensorFlow's worker gRPC server listens on every interface with no authentication and runs any graph it
is sent, also when the cluster names only 127.0.0.1. The supervisor therefore starts a small *holder*
process in a new network namespace (only a loopback interface, brought up), and every worker of the
attempt joins it before it execs (``setns``). Inside, the workers talk over 127.0.0.1 as before;
outside, nothing reaches their ports. The supervisor itself needs no connection to a worker (output,
heartbeats and results travel through pipes and files).

As root the namespace is made directly; as another user inside a new user namespace owned by that
user (the uid maps to itself, so files keep their owner). Where neither is allowed (a container
without ``CAP_SYS_ADMIN`` and with user namespaces off) :func:`create` raises
:class:`IsolationUnavailable` and the caller records that the workers are reachable.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Callable

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000

# Runs in the holder: unshare, bring `lo` up (SIOCSIFFLAGS), say "ready", then live until stdin closes.
_HOLDER = r"""
import ctypes, fcntl, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
flags = int(sys.argv[1])
uid, gid = os.getuid(), os.getgid()
if libc.unshare(flags) != 0:
    sys.stdout.write("error unshare: " + os.strerror(ctypes.get_errno()) + "\n"); sys.exit(1)
if flags & 0x10000000:  # a user namespace: map our uid/gid to themselves
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
ifr = struct.pack("16sH14x", b"lo", 0)
flags_now = struct.unpack("16sH14x", fcntl.ioctl(s, 0x8913, ifr))[1]          # SIOCGIFFLAGS
fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags_now | 0x1))        # SIOCSIFFLAGS: IFF_UP
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.read()
"""


class IsolationUnavailable(RuntimeError):
    """This machine does not let us make a network namespace (the reason is the message)."""


class Namespace:
    """A live private network namespace, held open by ``holder``; :meth:`close` ends it.

    Everything :meth:`enter` needs (the namespace descriptors, libc's ``setns``) is prepared here, in
    the parent: between fork and exec in a multi-threaded process (a trainer, a test runner) the child
    must not load libraries or allocate what another thread may have been holding a lock on.
    """

    def __init__(self, holder: subprocess.Popen[str], user_namespace: bool) -> None:
        self.holder, self.user_namespace = holder, user_namespace
        self._setns = ctypes.CDLL(None, use_errno=True).setns
        kinds = (("user", CLONE_NEWUSER),) if user_namespace else ()
        self._fds = [(os.open(f"/proc/{holder.pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC), flag, kind)
                     for kind, flag in (*kinds, ("net", CLONE_NEWNET))]

    @property
    def pid(self) -> int:
        return self.holder.pid

    def enter(self) -> None:
        """Join the namespace (call in a child between fork and exec: ``preexec_fn``)."""
        for fd, flag, kind in self._fds:
            if self._setns(fd, flag) != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, f"setns({kind}): {os.strerror(errno)}")

    def close(self) -> None:
        for fd, _, _ in self._fds:
            os.close(fd)
        self._fds = []
        if self.holder.poll() is None:
            assert self.holder.stdin is not None
            self.holder.stdin.close()
            try:
                self.holder.wait(5)
            except subprocess.TimeoutExpired:
                self.holder.kill()
                self.holder.wait()


def create(user_namespace: bool | None = None) -> Namespace:
    """A new private network namespace with only loopback, up; raises :class:`IsolationUnavailable`.

    ``user_namespace``: None picks (a plain one as root, else inside a user namespace, which root
    falls back to where it lacks CAP_SYS_ADMIN); True or False forces one way.
    """
    if user_namespace is None:
        attempts = [False, True] if os.geteuid() == 0 else [True]
    else:
        attempts = [user_namespace]
    reasons = []
    for user_ns in attempts:
        flags = CLONE_NEWNET | (CLONE_NEWUSER if user_ns else 0)
        holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(flags)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True)
        assert holder.stdout is not None
        line = holder.stdout.readline().strip()
        if line == "ready":
            return Namespace(holder, user_ns)
        holder.kill()
        _, err = holder.communicate()
        reasons.append(line or (err.strip().splitlines() or ["no output"])[-1])
    raise IsolationUnavailable("cannot create a network namespace: " + "; ".join(reasons))


def for_job(isolate: bool, warn: Callable[[str], object]) -> Namespace | None:
    """The namespace for one attempt's workers, or None (not asked for, or unavailable: ``warn`` says so,
    naming what is exposed)."""
    if not isolate:
        return None
    try:
        return create()
    except IsolationUnavailable as err:
        warn(f"warning: {err}; the workers' TensorFlow servers accept connections on every interface "
             "of this machine (they run any graph they are sent)")
        return None
