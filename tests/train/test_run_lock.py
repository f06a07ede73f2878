"""One job per model_dir, between real processes: a second chief is refused naming the holder, and a
killed holder's lock is taken over."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from recsys.train.run_dir import RunDir
from recsys.train.run_lock import RunLock, RunLocked

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOLD = ("import sys; from recsys.train.run_dir import RunDir; from recsys.train.run_lock import RunLock; "
        "RunLock(RunDir(sys.argv[1])).acquire(wait=0); print('locked', flush=True); sys.stdin.read()")
TRY = ("import sys; from recsys.train.run_dir import RunDir; from recsys.train.run_lock import RunLock, "
       "RunLocked\ntry:\n    RunLock(RunDir(sys.argv[1])).acquire(wait=0)\nexcept RunLocked as err:\n"
       "    print(err)\n    sys.exit(3)\nprint('locked')")


def _python(code: str, model_dir, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.Popen([sys.executable, "-c", code, str(model_dir)], env=env, text=True,
                            stdout=subprocess.PIPE, **kwargs)


def test_a_second_job_is_refused_naming_the_holder_and_a_dead_holders_lock_is_taken_over(tmp_path):
    model_dir = tmp_path / "m"
    holder = _python(HOLD, model_dir, stdin=subprocess.PIPE)
    assert holder.stdout.readline().strip() == "locked"
    second = _python(TRY, model_dir)
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 3, out
    assert f"pid {holder.pid} on host {socket.gethostname()}" in out and str(model_dir / ".lock") in out
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    holder.stdout.close()
    holder.stdin.close()
    third = _python(TRY, model_dir)
    out, _ = third.communicate(timeout=60)
    assert (third.returncode, out.strip()) == (0, "locked")  # the killed job's lock was stale


def test_in_process_release_lets_the_next_run_in(tmp_path):
    run_dir = RunDir(tmp_path)
    first = RunLock(run_dir)
    first.acquire(wait=0)
    assert first.holder()["pid"] == os.getpid()
    with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
        RunLock(run_dir).acquire(wait=0)  # another open file description: flock conflicts
    first.release()
    again = RunLock(run_dir)
    again.acquire(wait=0)
    again.release()
    assert RunDir(tmp_path).holds_run()  # the lock file alone does not make a directory a user's
