"""The supervisor's process handling with a stand-in worker (no TensorFlow): fast, generic behaviour.

The real MultiWorkerMirroredStrategy jobs are in test_local_training.py.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

CONFIG = "configs/synthetic_small.yaml"


def _args(tmp_path, python: str, *extra: str) -> list[str]:
    spec_dir = tmp_path / "data"  # the stand-in reads no data, but submit checks that the spec exists
    spec_dir.mkdir(exist_ok=True)
    (spec_dir / "feature_spec.json").write_text("{}")
    return ["--config", CONFIG, f"--set=data.spec_dir={spec_dir}", "--workers", "2",
            "--model_dir", str(tmp_path / "model"), "--python", python, "--grace_period", "1",
            "--status_every", "100", *extra]


def test_failing_worker_exhausts_backoff_with_exponential_delays(tmp_path, standin, submit_factory,
                                                                 job_status, is_alive):
    python, env = standin("fail")
    job = submit_factory(_args(tmp_path, python, "--backoff_limit", "2", "--backoff_delay", "0.4",
                               "--startup_timeout", "20"), env)
    code = job.finish(60)
    out = job.output()
    assert code == 1, out
    assert "job failed after 3 attempt(s)" in out and "backoff limit 2 reached" in out
    assert re.search(r"worker-1 \(pid \d+\) exited with code 3", out)
    assert "worker 1 giving up" in out  # the failing worker's last output is quoted
    delays = [float(x) for x in re.findall(r"restart \d/2 in ([\d.]+)s", out)]
    assert delays == [0.4, 0.8]
    status = job_status(str(tmp_path / "model" / "submit"))
    assert [a["ok"] for a in status["attempts"]] == [False, False, False]
    assert [a["failed_worker"] for a in status["attempts"]] == [1, 1, 1]
    assert len({tuple(a["ports"]) for a in status["attempts"]}) == 3  # fresh ports every attempt
    # worker 0 was stuck (sleeping); every attempt's workers are gone.
    assert not any(is_alive(pid) for a in status["attempts"] for pid in a["pids"])


def test_restart_after_a_failure_then_success(tmp_path, standin, submit_factory, job_status):
    python, env = standin("flaky")
    job = submit_factory(_args(tmp_path, python, "--backoff_limit", "1", "--backoff_delay", "0.1"), env)
    assert job.finish(60) == 0, job.output()
    status = job_status(str(tmp_path / "model" / "submit"))
    assert [a["ok"] for a in status["attempts"]] == [False, True]
    assert "worker-1" in status["attempts"][0]["reason"] and "code 5" in status["attempts"][0]["reason"]
    assert status["export_path"] == "/tmp/standin-export/1"
    assert "job succeeded" in job.output() and "after 2 attempt(s)" in job.output()
    # Per-worker, per-attempt log files hold the raw output.
    logs = sorted(os.listdir(tmp_path / "model" / "submit"))
    assert "worker-0.attempt-2.log" in logs and "worker-1.attempt-1.log" in logs


def test_stalled_workers_are_restarted_then_fail(tmp_path, standin, submit_factory, job_status):
    python, env = standin("stall")
    job = submit_factory(_args(tmp_path, python, "--backoff_limit", "1", "--backoff_delay", "0.1",
                               "--heartbeat_timeout", "1.5"), env)
    assert job.finish(60) == 1
    status = job_status(str(tmp_path / "model" / "submit"))
    assert len(status["attempts"]) == 2
    assert all("stalled: no output or heartbeat" in a["reason"] for a in status["attempts"])
    assert all(1.5 <= a["seconds"] < 10 for a in status["attempts"])


def test_heartbeat_file_counts_as_life(tmp_path, standin, submit_factory, job_status):
    """Workers that print nothing but rewrite their heartbeat file are neither slow to start nor stalled."""
    python, env = standin("heartbeat")
    job = submit_factory(_args(tmp_path, python, "--backoff_limit", "0", "--heartbeat_timeout", "1",
                               "--startup_timeout", "5"), env)
    assert job.finish(60) == 0, job.output()
    attempt = job_status(str(tmp_path / "model" / "submit"))["attempts"][0]
    assert attempt["ok"]  # the file is polled, so the first beat seen may be a later one
    assert all(step is not None and step <= 50 for step in attempt["first_steps"])
    assert all(step is not None and step >= 100 for step in attempt["last_steps"])


def test_worker_that_never_prints_fails_the_startup_barrier(tmp_path, standin, submit_factory, is_alive):
    python, env = standin("silent")
    job = submit_factory(_args(tmp_path, python, "--backoff_limit", "0", "--startup_timeout", "2"), env)
    assert job.finish(30) == 1
    out = job.output()
    assert "startup barrier timed out after 2s" in out
    assert re.search(r"worker-1 \(pid \d+\) never came up: no output at all", out)
    assert re.search(r"worker-0 \(pid \d+\) printed output but did not join the cluster", out)
    assert not any(is_alive(pid) for pid in job.worker_pids())


def test_bad_python_is_not_retried(tmp_path, submit_factory):
    job = submit_factory(_args(tmp_path, str(tmp_path / "no-such-python"), "--backoff_limit", "3"))
    assert job.finish(30) == 1
    out = job.output()
    assert "worker-0 could not be started" in out and "No such file" in out
    assert "after 1 attempt(s)" in out and "not retriable" in out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_to_submitter_stops_every_process(tmp_path, standin, submit_factory, is_alive, job_status,
                                                 signum):
    """Workers that ignore SIGTERM (as TensorFlow does) and their children are SIGKILLed after the grace."""
    python, env = standin("ignore_term")
    job = submit_factory(_args(tmp_path, python, "--stream_logs=false"), env)
    job.wait_for(r"all 2 worker\(s\) up", 30)
    children = []
    deadline = time.monotonic() + 10
    while len(children) < 2 and time.monotonic() < deadline:
        children = [int((tmp_path / f"child-{i}").read_text()) for i in range(2)
                    if (tmp_path / f"child-{i}").exists()]
        time.sleep(0.1)
    pids = job.worker_pids() + children
    assert len(pids) == 4 and all(is_alive(p) for p in pids)
    t0 = time.monotonic()
    job.proc.send_signal(signum)
    assert job.finish(20) == 128 + signum
    assert time.monotonic() - t0 < 8  # 1 s to take the request, 1 s grace, then SIGKILL
    name = signal.Signals(signum).name
    out = job.output()
    assert f"{name} received: the workers stop at the next step boundary" in out
    assert re.search(rf"^recsys submit: stopped before training \({name}\); no backup yet .*; run the same "
                     r"command to resume: recsys submit ", out, re.M), out
    assert job_status(str(tmp_path / "model" / "submit"))["state"] == "stopped"
    assert not any(is_alive(p) for p in pids)


def test_workers_die_with_a_killed_submitter(tmp_path, standin, submit_factory, is_alive):
    """Even SIGKILL of the submitter (no chance to clean up) takes its workers down (PR_SET_PDEATHSIG)."""
    python, env = standin("ignore_term")
    job = submit_factory(_args(tmp_path, python, "--stream_logs=false"), env)
    job.wait_for(r"all 2 worker\(s\) up", 30)
    pids = job.worker_pids()
    job.proc.kill()
    job.proc.wait()
    deadline = time.monotonic() + 10
    while any(is_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(is_alive(p) for p in pids)


def test_restart_delay_doubles_up_to_the_cap():
    from recsys.launch.local import LocalJobSpec, restart_delay

    spec = LocalJobSpec(command=["x"], num_workers=1, log_dir="/tmp", backoff_delay=10, backoff_max_delay=60)
    assert [restart_delay(spec, r) for r in range(1, 6)] == [10, 20, 40, 60, 60]


def test_single_worker_is_up_on_any_output(tmp_path, standin, submit_factory):
    python, env = standin("quiet")
    args = _args(tmp_path, python, "--startup_timeout", "2", "--backoff_limit", "0")
    args[args.index("--workers") + 1] = "1"
    job = submit_factory(args, env)
    assert job.finish(30) == 0, job.output()
    assert "all 1 worker(s) up" in job.output()


def test_missing_feature_spec_fails_before_starting_workers(tmp_path, submit_factory):
    job = submit_factory(["--config", CONFIG, f"--set=data.spec_dir={tmp_path / 'nowhere'}",
                          "--model_dir", str(tmp_path / "model")])
    assert job.finish(30) == 1
    assert "no feature_spec.json in data.spec_dir=" in job.output() and not job.worker_pids()


def test_workers_are_reachable_only_from_inside_their_job(tmp_path, standin, submit_factory, job_status):
    """Each worker listens on every interface (as TensorFlow's server does) and reaches its peer; from
    this process neither is reachable, on 127.0.0.1 or the machine's other addresses."""
    import socket
    import subprocess

    def reachable(host: str, port: int) -> bool:
        try:
            socket.create_connection((host, port), timeout=5).close()
            return True
        except OSError:
            return False

    python, env = standin("listen")
    job = submit_factory(_args(tmp_path, python), env)
    files = [tmp_path / f"listening-{i}" for i in range(2)]
    job.wait_for(r"pids worker-", 30)
    deadline = time.monotonic() + 60
    while not all(f.exists() for f in files) and job.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(f.exists() for f in files), job.output()  # both listened and reached each other
    ports = [int(f.read_text().rsplit(":", 1)[1]) for f in files]
    others = [a for a in subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
              if "." in a and not a.startswith("127.")]
    assert not [(h, p) for p in ports for h in ["127.0.0.1", *others] if reachable(h, p)]
    (tmp_path / "release").write_text("")
    assert job.finish(60) == 0, job.output()
    assert job_status(str(tmp_path / "model" / "submit"))["attempts"][0]["network_isolated"] is True
