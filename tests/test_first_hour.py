"""The newcomer test: the README's first hour, typed as a newcomer types it, on small data.

One working directory, relative paths everywhere, the `recsys` commands of the README in their order:
preprocess, train (killed with Ctrl-C and resumed), submit on the local cluster, compare, rows, serve,
query, promote, study. Every command's output is checked for tracebacks and start-up noise.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from tests.noise import noise_lines

pytestmark = pytest.mark.slow

SMALL = [a for o in ("train.verbose=1", "data.batch_size=128", "data.eval_batch_size=1024",
                     "model.embedding_dim=4", "model.bottom_mlp=[16,4]", "model.top_mlp=[16,8]",
                     "model.cross_layers=1", "train.steps_per_execution=10") for a in ("--set", o)]


def _recsys() -> list[str]:
    """The `recsys` console script beside this interpreter (what a newcomer types), else the module."""
    script = pathlib.Path(sys.executable).parent / "recsys"
    return [str(script)] if script.exists() else [sys.executable, "-m", "recsys.cli"]


def _env() -> dict[str, str]:
    # as from a user's shell: not the TF_USE_LEGACY_KERAS this test process's recsys.compat set
    return {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}


class Session:
    """A newcomer's shell: one working directory, every command's output kept and checked."""

    def __init__(self, cwd: pathlib.Path) -> None:
        self.cwd = cwd
        self.outputs: list[tuple[str, str]] = []

    def run(self, *args: str, ok: tuple[int, ...] = (0,),
            timeout: float = 600) -> subprocess.CompletedProcess:
        proc = subprocess.run([*_recsys(), *args], cwd=self.cwd, env=_env(), capture_output=True, text=True,
                              timeout=timeout)
        self.check(" ".join(args[:1]), proc.stdout + proc.stderr)
        assert proc.returncode in ok, \
            f"recsys {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
        return proc

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([*_recsys(), *args], cwd=self.cwd, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def check(self, name: str, text: str) -> None:
        self.outputs.append((name, text))
        assert "Traceback" not in text, f"`recsys {name}` printed a traceback:\n{text[-3000:]}"
        noise = noise_lines(text)
        assert not noise, f"`recsys {name}` printed start-up noise:\n" + "\n".join(noise[:10])


def _wait(condition, what: str, timeout: float = 300, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"the process exited ({proc.returncode}) before {what}:\n{out[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def _version(export: pathlib.Path) -> str:
    versions = [p.name for p in export.iterdir() if p.name.isdigit()]
    assert len(versions) == 1, versions
    return versions[0]


def test_the_first_hour(tmp_path):
    sh = Session(tmp_path)
    # 1. data
    sh.run("preprocess", "--source=synthetic", "--rows=3000", "--output", "out/data/mine")
    assert (tmp_path / "out/data/mine/feature_spec.json").exists()
    # 2. train, Ctrl-C after the first backup, the same command again: it resumes and finishes
    train = ["train", "--config", "synthetic_small", "--set", "data.spec_dir=out/data/mine", *SMALL,
             "--set", "train.steps=600", "--set", "train.backup_every_steps=50", "--model_dir", "out/run1"]
    job = sh.start(*train)
    _wait(lambda: (tmp_path / "out/run1/backup/checkpoint").exists(), "the first backup", proc=job)
    job.send_signal(signal.SIGINT)
    out, _ = job.communicate(timeout=120)
    sh.check("train (interrupted)", out)
    assert job.returncode == 130, out[-2000:]
    assert "to resume" in out.lower() and len([line for line in out.splitlines() if line.strip()]) < 40
    resumed = sh.run(*train)
    assert "resum" in (resumed.stdout + resumed.stderr).lower()
    # rebuilt from what its export carries, never interrupted: the same weights (the README's promise)
    v1 = _version(tmp_path / "out/run1/export/ranker")
    rebuilt = sh.run("reproduce", f"out/run1/export/ranker/{v1}", "--data", "out/data/mine", "--output",
                     "out/rebuild")
    assert "reproduced bit for bit" in rebuilt.stdout
    fp1 = json.loads((tmp_path / "out/run1/fingerprint.json").read_text())
    cert = json.loads((tmp_path / "out/rebuild/certificate.json").read_text())
    assert fp1["weights_sha256"] in json.dumps(cert)
    # 3. the same job on the local cluster (2 workers)
    sh.run("submit", "--config", "synthetic_small", "--set", "data.spec_dir=out/data/mine", *SMALL,
           "--set", "train.steps=60", "--cluster", "local", "--workers", "2", "--model_dir", "out/run2")
    status = json.loads((tmp_path / "out/run2/submit/status.json").read_text())
    assert status["state"] == "succeeded" and status["steps_done"] == 60
    # 4. compare the one-process model (600 steps) and the two-worker one (60): a limit it passes, exit 0
    v2 = _version(tmp_path / "out/run2/export/ranker")
    diff = sh.run("compare", f"out/run1/export/ranker/{v1}", f"out/run2/export/ranker/{v2}",
                  "--data", "out/data/mine", "--max_relative_pd", "2")
    assert "relative PD" in diff.stdout
    # 5. query rows, serve, query
    sh.run("rows", "--data", "out/data/mine", "--count", "50", "--output", "rows.jsonl")
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 50
    from recsys.launch.ports import free_ports

    port, rest = free_ports(2)
    server = sh.start("serve", f"--port={port}", f"--rest_api_port={rest}", "--model_base_path",
                      "out/run1/export/ranker", "--model_name", "ranker")
    try:
        _wait(lambda: _ready(rest), "the server", proc=server)
        query = sh.run("query", "--server", f"127.0.0.1:{port}", "--model_name", "ranker", "--rows",
                       "rows.jsonl")
        assert query.stdout.count("\n") >= 50
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=60)
    sh.check("serve", out)
    # 6. a study: replicas, PD beside AUC, the finding and where the report is
    study = sh.run("study", "--config", "synthetic_small", "--set", "data.spec_dir=out/data/mine", *SMALL,
                   "--set", "train.steps=40", "--set", "train.verbose=0", "--replicas", "2", "--activations",
                   "relu,smelu", "--output", "out/study", "--bootstrap_draws", "50")
    assert "Finding:" in study.stdout and "out/study/results.md" in study.stdout
    assert (tmp_path / "out/study/results.md").exists()


def _ready(rest_port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/ranker", timeout=2) as r:
            return b"AVAILABLE" in r.read()
    except OSError:
        return False
