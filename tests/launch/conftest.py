"""Helpers for the launch tests: run ``recsys submit`` as a subprocess and watch its output live."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Submit:
    """``python -m recsys.cli submit ARGS`` with its merged output collected line by line."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.times: list[float] = []
        self.start = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "recsys.cli", "submit", *args], cwd=REPO,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self.times.append(time.monotonic() - self.start)

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> re.Match:
        """The first output line from line ``start`` on matching ``pattern``; fails the test after
        ``timeout`` s."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = start
        while time.monotonic() < deadline:
            for line in self.lines[seen:]:
                match = regex.search(line)
                if match:
                    return match
            seen = len(self.lines)
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.1)
        self.kill()
        pytest.fail(f"no line matching {pattern!r} within {timeout}s; output tail:\n{self.tail()}")

    def finish(self, timeout: float) -> int:
        """Wait for the submitter to exit (killing it and failing the test after ``timeout``)."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"recsys submit did not finish in {timeout}s; output tail:\n{self.tail()}")
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """Last resort: SIGKILL the submitter's group and the workers it named."""
        for pid in self.worker_pids():
            _killpg(pid)
        _killpg(self.proc.pid)
        self.proc.wait()

    def worker_pids(self) -> list[int]:
        return [int(p) for line in self.lines if "pids worker-" in line
                for p in re.findall(r"worker-\d+=(\d+)", line)]

    def output(self) -> str:
        return "\n".join(self.lines)

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.lines[-n:])


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def read_status(log_dir: str) -> dict:
    with open(os.path.join(log_dir, "status.json")) as fh:
        return json.load(fh)


@pytest.fixture
def submit_factory():
    """Start submitters; any left running at the end of the test are killed with their workers."""
    started: list[Submit] = []

    def make(args: Sequence[str], env: dict[str, str] | None = None) -> Submit:
        s = Submit(args, env)
        started.append(s)
        return s

    yield make
    for s in started:
        if s.proc.poll() is None:
            s.kill()
        for pid in s.worker_pids():
            _killpg(pid)


@pytest.fixture
def is_alive():
    """``is_alive(pid)``: the process exists and is not a zombie."""
    return alive


@pytest.fixture
def job_status():
    """``job_status(log_dir)``: the supervisor's status.json as a dict."""
    return read_status


STANDIN = '''#!{python}
"""Stand-in worker for the supervisor tests (no TensorFlow): behaviour from $STANDIN_MODE."""
import json, os, signal, subprocess, sys, time
sys.path.insert(0, {repo!r})
from recsys.train import heartbeat

mode = os.environ["STANDIN_MODE"]
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
attempt = int(os.environ["RECSYS_LAUNCH_ATTEMPT"])
with open(os.path.join(os.environ["STANDIN_DIR"], f"pid-{{index}}-{{attempt}}"), "w") as fh:
    fh.write(str(os.getpid()))
if mode == "silent":  # worker 1 hangs before printing anything; worker 0 waits for it (as in TF)
    if index == 0:
        print("I0000 waiting for the cluster", flush=True)
    time.sleep(1000)
if mode == "heartbeat":  # no output at all: only heartbeat files show life
    for step in range(0, 15):
        heartbeat.write_heartbeat(os.environ[heartbeat.HEARTBEAT_FILE_ENV], step * 10)
        time.sleep(0.2)
    sys.exit(0)
if mode == "quiet":  # a single worker that prints no strategy line (no cluster to join)
    print("training quietly", flush=True)
    time.sleep(4)
    sys.exit(0)
print("MultiWorkerMirroredStrategy with cluster_spec = stand-in", flush=True)
if mode == "listen":  # like TF's worker server: every interface, the port TF_CONFIG gives this worker
    import socket
    workers = json.loads(os.environ["TF_CONFIG"])["cluster"]["worker"]
    srv = socket.socket()
    srv.bind(("0.0.0.0", int(workers[index].rsplit(":", 1)[1])))
    srv.listen()
    for _ in range(200):  # its peer is reachable from here (inside the job) once it listens
        try:
            socket.create_connection(tuple(workers[1 - index].rsplit(":", 1)), timeout=5).close()
            break
        except ConnectionRefusedError:
            time.sleep(0.05)
    else:
        sys.exit(7)
    with open(os.path.join(os.environ["STANDIN_DIR"], f"listening-{{index}}"), "w") as fh:
        fh.write(workers[index])
    while not os.path.exists(os.path.join(os.environ["STANDIN_DIR"], "release")):
        time.sleep(0.05)
    sys.exit(0)
if mode == "fail":
    if index == 1:
        time.sleep(0.3)
        print("worker 1 giving up", flush=True)
        sys.exit(3)
    time.sleep(1000)
if mode == "stall":
    time.sleep(1000)
if mode == "ignore_term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(["sleep", "1000"])
    with open(os.path.join(os.environ["STANDIN_DIR"], f"child-{{index}}"), "w") as fh:
        fh.write(str(child.pid))
    while True:
        print("still here", flush=True)
        time.sleep(0.5)
if mode == "flaky":  # worker 1 fails on the first attempt only
    if index == 1 and attempt == 1:
        sys.exit(5)
    time.sleep(0.5)
    if index == 0:  # the chief's fingerprint is where the supervisor reads the export path
        model_dir = sys.argv[sys.argv.index("--model_dir") + 1]
        os.makedirs(model_dir, exist_ok=True)
        with open(os.path.join(model_dir, "fingerprint.json"), "w") as fh:
            json.dump({{"export_path": "/tmp/standin-export/1", "weights_sha256": "ab" * 32}}, fh)
    sys.exit(0)
sys.exit(0)
'''


@pytest.fixture
def standin(tmp_path):
    """(python executable for --python, env) running the stand-in worker in ``mode``."""
    def make(mode: str) -> tuple[str, dict[str, str]]:
        path = tmp_path / "standin-python"
        path.write_text(STANDIN.format(python=sys.executable, repo=REPO))
        path.chmod(0o755)
        return str(path), {"STANDIN_MODE": mode, "STANDIN_DIR": str(tmp_path)}
    return make
