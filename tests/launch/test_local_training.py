"""Real ``recsys train`` workers (MultiWorkerMirroredStrategy on 127.0.0.1) supervised by ``recsys submit``.

Tiny data (1,000 rows), batch 64, one step per execution and 10-step epochs, so each job takes
seconds of training; TensorFlow start-up dominates on the shared 2-core box.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

STEPS = 120  # the Ctrl-C job: long enough to be interrupted after its 20th step
SMALL = ["data.batch_size=64", "data.eval_batch_size=256", "data.shuffle_buffer=256",
         "train.steps_per_execution=1", "train.eval_every=10", "train.train_metrics=false",
         "export.warmup_requests=0", "model.bottom_mlp=[8]", "model.top_mlp=[16]"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("launch-data") / "synthetic"
    subprocess.run([sys.executable, "-m", "recsys.cli", "preprocess", "--source", "synthetic",
                    "--rows", "1000", "--output", str(out)], check=True, capture_output=True, timeout=120)
    return str(out)


def _args(data: str, model_dir, steps: int, *extra: str) -> list[str]:
    sets = [f"--set={s}" for s in [f"data.spec_dir={data}", f"train.steps={steps}", *SMALL]]
    return ["--config", "configs/synthetic_small.yaml", *sets, "--workers", "2",
            "--model_dir", str(model_dir), "--grace_period", "3", "--status_every", "1000", *extra]


def _checkpoint_step(model_dir) -> int:
    """The optimizer's global step in the latest checkpoint the trainer wrote."""
    from recsys.compat import tf

    path = tf.train.latest_checkpoint(os.path.join(str(model_dir), "checkpoints"))
    assert path, f"no checkpoint in {model_dir}"
    return int(tf.train.load_checkpoint(path).get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))


def _assert_exported(export_path: str) -> None:
    assert export_path and os.path.isfile(os.path.join(export_path, "saved_model.pb")), export_path
    assert os.path.isdir(os.path.join(export_path, "variables"))


def test_worker_that_never_starts_fails_within_the_barrier_timeout(tiny_data, tmp_path, submit_factory,
                                                                    is_alive):
    """Worker 1 hangs before TensorFlow starts; worker 0 (real trainer) waits for it in the strategy."""
    wrapper = tmp_path / "python"
    wrapper.write_text("#!/bin/sh\ncase \"$TF_CONFIG\" in *'\"index\": 1'*) echo $$ > "
                       f"{tmp_path}/hung.pid; exec sleep 1000;; esac\nexec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    job = submit_factory(_args(tiny_data, tmp_path / "model", 20, "--backoff_limit", "0",
                               "--startup_timeout", "20", "--python", str(wrapper)))
    t0 = time.monotonic()
    assert job.finish(90) == 1
    elapsed = time.monotonic() - t0
    out = job.output()
    assert "startup barrier timed out after 20s" in out
    assert re.search(r"worker-1 \(pid \d+\) never came up: no output at all", out)
    assert "job failed after 1 attempt(s)" in out
    assert elapsed < 20 + 15, elapsed
    hung = int((tmp_path / "hung.pid").read_text())
    assert not is_alive(hung) and not any(is_alive(pid) for pid in job.worker_pids())


def test_ctrl_c_stops_every_worker_at_one_step_with_a_backup_and_says_how_to_resume(
        tiny_data, tmp_path, submit_factory, job_status):
    """Two real workers form one MultiWorkerMirroredStrategy cluster (logs prefixed per worker). SIGINT
    on `recsys submit` once training runs: the workers stop together at a step boundary, the backup
    holds that step, status.json says so (no export), one line gives the step and the command to
    resume, exit 130; the same command then resumes from that step, finishes and exports. The workers'
    heartbeats are summed up in the supervisor's progress line, not echoed."""
    model_dir = tmp_path / "model"
    args = _args(tiny_data, model_dir, STEPS, "--backoff_limit", "0", "--set=train.eval_every=50",
                 "--status_every", "0.2")
    job = submit_factory(args)
    line = 0
    while True:  # the progress line, from the chief's heartbeats (every 10 steps)
        m = job.wait_for(rf"^\[submit\] step (\d+)/{STEPS} \(\d+%\) - [\d.]+ steps/s - \w+ left$", 240, line)
        line = job.lines.index(m.string, line) + 1
        if int(m.group(1)) >= 20:
            break
    job.proc.send_signal(signal.SIGINT)
    assert job.finish(120) == 130, job.tail()
    out = job.output()
    assert "Traceback" not in out, job.tail()
    for i in range(2):
        assert re.search(rf"\[worker-{i}\] .*MultiWorkerMirroredStrategy with cluster_spec "
                         r".*num_workers = 2", out)
    assert "recsys-heartbeat" not in out and "stopping at the next step boundary" not in out, job.tail()
    status = job_status(str(model_dir / "submit"))
    assert status["state"] == "stopped" and not status["ok"], status
    assert status["export_path"] is None and status["total_steps"] == STEPS
    step = status["steps_done"]
    assert 20 <= step < STEPS and status["backup_step"] == step, status
    assert re.search(rf"^recsys submit: stopped at step {step} of {STEPS} \(SIGINT\); backup at step {step}; "
                     r"run the same command to resume: recsys submit --config ", out, re.M), job.tail()
    # Both workers stopped at that very step (none waits for the other in a collective).
    for i in range(2):
        log = (model_dir / "submit" / f"worker-{i}.attempt-1.log").read_text()
        assert f"recsys train: stopped at step {step} of {STEPS} (SIGINT), backup saved\n" in log, log[-2000:]
        assert "recsys-heartbeat step=" in log  # the logs keep them
    rerun = submit_factory(args)
    assert rerun.finish(240) == 0, rerun.tail()
    assert re.search(rf"resuming from .*backup/ckpt-{step} at global step {step}\b", rerun.output())
    status = job_status(str(model_dir / "submit"))
    assert status["state"] == "succeeded" and status["steps_done"] == STEPS, status
    assert status["ok"] and len(status["attempts"]) == 1, status
    _assert_exported(status["export_path"])
    assert f"export: {status['export_path']}" in rerun.output()
    assert '[worker-0]   "is_chief": true' in rerun.output(), rerun.tail()
    assert _checkpoint_step(model_dir) == STEPS
