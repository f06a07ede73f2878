"""Exact resume on real processes: after every kind of failure a job ends with the weights of the job
that never failed, bit for bit (same weights digest, relative PD exactly 0 on the eval split), having
trained on exactly the same examples in the same order (visit logs).

The matrix, on 1 and 2 local MultiWorkerMirroredStrategy workers: SIGKILL of the chief and of the
other worker mid-epoch and then a hung worker (SIGSTOP, found by the stall detector), three failures
in one job; the whole job killed then the same command run again (2 workers; `recsys train` killed,
resumed through other path forms, stopped with Ctrl-C and rerun, for one process). Failures are
triggered on the heartbeat lines the trainer prints every step, never on timers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from pipelines.synthetic_spec import SyntheticLayout, write_synthetic
from serving.pd import absolute_pd, relative_pd

pytestmark = pytest.mark.slow
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

STEPS = 40
SETS = ["data.batch_size=64", "data.eval_batch_size=256", "data.shuffle_buffer=192",
        "train.steps_per_execution=3", "train.eval_every=20", "train.backup_every_steps=4",
        "train.train_metrics=false", "train.record_visits=true", "export.enabled=false",
        "model.bottom_mlp=[8]", "model.top_mlp=[16]", f"train.steps={STEPS}", "train.verbose=1"]


@pytest.fixture(scope="module")
def data(run_once) -> str:
    """The data set every job of this module trains on (written once per session)."""
    def make(root) -> None:
        write_synthetic(str(root), num_train=900, num_eval=300, num_train_shards=3, seed=3,
                        layout=SyntheticLayout(num_numeric=3, num_categorical=3, num_multi=1, cardinality=40))

    return str(run_once("resume-data", make))


def submit_args(data: str, model_dir, workers: int, *extra: str) -> list[str]:
    sets = [f"--set={s}" for s in [f"data.spec_dir={data}", *SETS]]
    return ["--config", "synthetic_small", *sets, "--workers", str(workers), "--model_dir", str(model_dir),
            "--grace_period", "2", "--status_every", "1000", "--heartbeat_every", "1", "--stream_heartbeats",
            "--backoff_delay", "0", "--backoff_limit", "3", *extra]


def outcome(model_dir) -> dict:
    """Weights digest, final eval predictions and the visit log of a finished run."""
    with open(os.path.join(model_dir, "fingerprint.json")) as fh:
        fp = json.load(fh)
    with np.load(os.path.join(model_dir, "evals", f"step-{STEPS:09d}.npz")) as z:
        preds = z["predictions"]
    return {"fingerprint": fp, "predictions": preds, "visits": visits(model_dir)}


def visits(model_dir) -> dict[tuple[int, int, int], list[int]]:
    """(worker, step, replica) -> example fingerprints; a step redone after a restart replaces the
    earlier record (that attempt's state after its last backup was discarded)."""
    out: dict[tuple[int, int, int], list[int]] = {}
    directory = os.path.join(model_dir, "visits")
    for name in sorted(os.listdir(directory)):
        worker = int(re.match(r"worker-(\d+)\.jsonl", name).group(1))
        with open(os.path.join(directory, name)) as fh:
            for line in fh:
                r = json.loads(line)
                out[(worker, r["step"], r["replica"])] = r["ids"]
    return out


def assert_same_model(resumed: dict, reference: dict) -> float:
    """Bit-identical weights, PD exactly 0, identical example stream; returns the relative PD."""
    rel = relative_pd(reference["predictions"], resumed["predictions"])
    absolute = absolute_pd(reference["predictions"], resumed["predictions"])
    assert resumed["fingerprint"]["weights_sha256"] == reference["fingerprint"]["weights_sha256"]
    assert rel == 0.0 and absolute == 0.0, (rel, absolute)
    assert resumed["visits"] == reference["visits"]
    assert len(reference["visits"]) == STEPS * reference["fingerprint"]["num_workers"]
    return rel


@pytest.fixture(scope="module")
def reference(data, run_once):
    """The uninterrupted job, per worker count (run once per test session, shared by the xdist workers)."""
    cache: dict[int, dict] = {}

    def train_reference(root, workers: int) -> None:
        job = subprocess.run([sys.executable, "-m", "recsys.cli", "submit",
                              *submit_args(data, root / "m", workers)], cwd=REPO, capture_output=True,
                             text=True, timeout=300)
        assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]

    def get(workers: int) -> dict:
        if workers not in cache:
            made = run_once(f"resume-reference-{workers}", lambda root: train_reference(root, workers))
            cache[workers] = outcome(made / "m")
            assert not cache[workers]["fingerprint"]["resumes"]
        return cache[workers]

    return get


def wait_step(job, worker: int, at_least: int, attempt_line: int = 0) -> int:
    """Wait for ``worker``'s heartbeat at a step >= ``at_least`` (after output line ``attempt_line``)."""
    pattern = rf"^\[worker-{worker}\] recsys-heartbeat step=(\d+) phase=train"
    while True:
        m = job.wait_for(pattern, 240, start=attempt_line)
        attempt_line = job.lines.index(m.string, attempt_line) + 1
        if int(m.group(1)) >= at_least:
            return attempt_line


@pytest.mark.parametrize("workers", [1, 2])
def test_three_failures_in_one_job_resume_exactly(data, tmp_path, submit_factory, reference, workers):
    """SIGKILL the chief mid-epoch, then (attempt 2) the last worker, then (attempt 3) hang the last
    worker with SIGSTOP: same weights, PD 0. Alone, the hung worker is found by the supervisor's stall
    detector; with a peer, TensorFlow's coordination service may notice first (its peer exits with an
    error) -- either way the attempt ends and the next one resumes."""
    # The stall timeout must exceed the silent start-up (model build, first trace) on a loaded machine.
    job = submit_factory(submit_args(data, tmp_path / "m", workers, "--heartbeat_timeout", "40",
                                     "--backoff_limit", "4"))
    line = wait_step(job, 0, 5)  # between backups (every 4 steps): the work after the backup is redone
    os.kill(job.worker_pids()[0], signal.SIGKILL)
    up = job.wait_for(r"\[submit\] attempt 2: pids", 120)
    line = job.lines.index(up.string)
    last = workers - 1
    line = wait_step(job, last, 19, line)
    os.kill(job.worker_pids()[-1], signal.SIGKILL)
    up = job.wait_for(r"\[submit\] attempt 3: pids", 120)
    line = wait_step(job, last, 25, job.lines.index(up.string))
    hung = job.worker_pids()[-1]  # this attempt's last worker
    os.kill(hung, signal.SIGSTOP)
    try:
        job.wait_for(r"\[submit\] attempt 3 failed", 120)
    finally:
        try:
            os.kill(hung, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert job.finish(300) == 0, job.tail()
    # The survivor of a killed peer says so in one line, without a traceback or gRPC's error wall.
    out = job.output()
    assert "Traceback" not in out and "Additional GRPC error information" not in out, job.tail(120)
    assert not re.search(r"\] E\d{4} .*Connection reset by peer", out), job.tail(120)
    if workers > 1:
        assert "recsys train: lost a peer worker" in out, job.tail(120)
    # The failure names the step the killed worker was at; its quoted last lines are not heartbeats.
    killed = r"worker-0 \(pid \d+\) was killed by SIGKILL at step \d+; last output"
    assert re.search(killed, out), job.tail(120)
    assert "| recsys-heartbeat" not in out, job.tail(120)
    attempts = json.loads((tmp_path / "m" / "submit" / "status.json").read_text())["attempts"]
    assert [a["ok"] for a in attempts] == [False, False, False, True]
    reason = attempts[2]["reason"]
    if workers == 1:
        assert re.match(rf"worker-0 \(pid {hung}\) stalled: no output or heartbeat for", reason), reason
    else:
        assert re.match(rf"worker-1 \(pid {hung}\) stalled|worker-0 \(pid \d+\) exited", reason), reason
    resumed = outcome(tmp_path / "m")
    steps = [r["step"] for r in resumed["fingerprint"]["resumes"]]
    assert len(steps) == 3 and 4 <= steps[0] < steps[1] <= steps[2] < STEPS, steps
    # The SIGKILLs resume at a periodic backup (every 4 steps), mid-epoch (evaluations: 20, 40). The hung
    # worker may save one of its own: the supervisor's SIGTERM waits while it is stopped, and the SIGCONT
    # above lets it stop cleanly at its step with a backup before the next attempt starts.
    assert steps[0] % 4 == 0 and steps[1] % 4 == 0, steps
    pd = assert_same_model(resumed, reference(workers))
    print(f"\n{workers} worker(s), killed twice and hung once, resumed at steps {steps}: relative PD {pd}")


def test_killed_job_rerun_with_the_same_command_resumes_exactly(data, tmp_path, submit_factory, reference):
    """The whole job (submitter and both workers) dies; the same command run again finishes exactly, and
    a third run says the job is finished and trains nothing. (One process: `recsys train` killed and
    rerun, below.)"""
    workers = 2
    args = submit_args(data, tmp_path / "m", workers)
    job = submit_factory(args)
    wait_step(job, 0, 13)
    pids = job.worker_pids()
    job.kill()  # SIGKILL to the submitter's group and every worker
    second = submit_factory(args)
    second.wait_for(r"holds an unfinished run of this config: it resumes", 60)
    assert second.finish(300) == 0, second.tail()
    assert not set(pids) & set(second.worker_pids())
    resumed = outcome(tmp_path / "m")
    pd = assert_same_model(resumed, reference(workers))
    third = submit_factory(args)
    assert third.finish(120) == 0, third.tail()
    assert "already holds this run, finished at step 40" in third.output()
    assert not third.worker_pids()  # nothing retrained
    print(f"\n{workers} worker(s), whole job killed and resubmitted: relative PD {pd}")


def train_command(data: str, model_dir) -> list[str]:
    return [sys.executable, "-m", "recsys.cli", "train", "--config", "synthetic_small",
            *[f"--set={s}" for s in [f"data.spec_dir={data}", *SETS]], "--model_dir", str(model_dir)]


def train_env(heartbeat_file) -> dict[str, str]:
    path = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, RECSYS_HEARTBEAT_FILE=str(heartbeat_file), RECSYS_HEARTBEAT_EVERY="1",
                PYTHONUNBUFFERED="1", PYTHONPATH=path)


def train_then_kill(cmd: list[str], env: dict[str, str], at_least: int, cwd=None) -> str:
    """Run ``recsys train`` and SIGKILL it at its first heartbeat at a step >= ``at_least`` (a backup
    is saved every 4 steps, so one exists by then); returns its stderr up to the kill."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        m = re.match(r"recsys-heartbeat step=(\d+) phase=train", line)
        if m and int(m.group(1)) >= at_least:
            proc.kill()
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-30:])
    return "".join(seen)


def ctrl_c_at(cmd: list[str], env: dict[str, str], at_least: int, cwd=None) -> tuple[int, str]:
    """Ctrl-C (SIGINT) on ``recsys train`` at its first heartbeat at a step >= ``at_least``; it must stop
    at the next chunk with a backup of that very step, say so in one line with the command to resume
    (no traceback) and exit 130. Returns (that step, its stderr)."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        m = re.match(r"recsys-heartbeat step=(\d+) phase=train", line)
        if m and int(m.group(1)) >= at_least:
            proc.send_signal(signal.SIGINT)
            break
    lines += proc.stderr.readlines()
    assert proc.wait(120) == 130, "".join(lines[-30:])
    err = "".join(lines)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    stopped = re.search(r"recsys train: stopped at step (\d+) of 40 \(SIGINT\), backup saved; run the "
                        r"same command to resume: recsys train ", err)
    assert stopped, err[-3000:]
    step = int(stopped.group(1))
    assert at_least < step < STEPS
    return step, err


def test_recsys_train_killed_then_ctrl_c_resumes_exactly_from_any_path_form(data, tmp_path, reference):
    """`recsys train` itself (no supervisor) with a relative --model_dir: SIGKILLed, resumed through
    another cwd and a ``..`` and a symlink, stopped there with Ctrl-C (a backup of that very step, one
    line saying how to resume, exit 130), finished in the first form from exactly that step: the weights
    of the run that never stopped. A relative --model_dir used to fail to resume with "no backup in
    out/run1/backup can be restored: out/run1/backup/out/run1/backup/ckpt-8"."""
    work, other = tmp_path / "work", tmp_path / "other"
    work.mkdir()
    other.mkdir()
    os.symlink(work, tmp_path / "link")
    env = train_env(tmp_path / "hb")
    train_then_kill(train_command(data, "out/run1"), env, 10, cwd=work)
    step, second = ctrl_c_at(train_command(data, "../link/out/run1"), env, 22, cwd=other)
    resumed = re.search(r"resuming from (\S+) at global step (\d+)", second)
    assert resumed, second[-3000:]
    assert resumed.group(1).startswith(str(tmp_path / "link" / "out" / "run1" / "backup" / "ckpt-"))
    assert 8 <= int(resumed.group(2)) < 22
    done = subprocess.run(train_command(data, "out/run1"), env=env, cwd=work, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(rf"resuming from \S+/work/out/run1/backup/ckpt-{step} at global step {step}\b",
                     done.stderr), done.stderr[-3000:]
    assert_same_model(outcome(work / "out" / "run1"), reference(1))
    again = subprocess.run(train_command(data, "../work/out/run1"), env=env, cwd=other,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already holds this run, finished at step 40" in again.stderr, \
        again.stderr[-3000:]
    assert json.loads(again.stdout[again.stdout.index("{"):])["weights_sha256"] == \
        reference(1)["fingerprint"]["weights_sha256"]


def test_resume_refuses_changed_config_and_worker_count(data, tmp_path, submit_factory, reference):
    """An unfinished run refuses a different config or worker count, naming the difference; with
    --allow_resume_change=workers it resumes and records the change in the fingerprint."""
    model_dir = tmp_path / "m"
    job = submit_factory(submit_args(data, model_dir, 1))
    wait_step(job, 0, 6)
    job.kill()
    changed = submit_factory(submit_args(data, model_dir, 1, "--set=model.activation=smelu"))
    assert changed.finish(120) == 78  # as the trainer's refusal
    assert re.search(r"refused: .*config: model\.activation: 'relu' -> 'smelu'", changed.output())
    more = submit_factory(submit_args(data, model_dir, 2))
    assert more.finish(120) == 78
    assert "workers: 1 worker(s) -> 2" in more.output()
    assert not changed.worker_pids() and not more.worker_pids()
    allowed = submit_factory(submit_args(data, model_dir, 2, "--allow_resume_change=workers"))
    assert allowed.finish(300) == 0, allowed.tail()
    fp = outcome(model_dir)["fingerprint"]
    assert fp["resumes"][-1]["changes"] == ["workers"] and fp["num_workers"] == 2
    assert any("changed workers" in c for c in fp["bitwise_caveats"]), fp["bitwise_caveats"]
