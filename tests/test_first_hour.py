"""The newcomer test: the README's first hour, typed as a newcomer types it, on small data.

One working directory, relative paths everywhere, the `recsys` commands of the README in their order:
preprocess, train (killed with Ctrl-C and resumed), reproduce, submit on the local cluster (its export a
new version beside the first), compare, rows, serve, query, promote (the new version against the served
one), study. Every command's output is checked for tracebacks and start-up noise.

Every command runs in a user's shell environment, without the TF_USE_LEGACY_KERAS that this test
process's recsys.compat set: the import-order bug (`recsys study` importing TensorFlow through serving/
before the training stack left Keras 3 selected and failed at import) shows only there.
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
    # as from a user's shell: not the TF_USE_LEGACY_KERAS this test process's recsys.compat set (children
    # would inherit it and hide an import-order bug that selects Keras 3)
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
    pre = sh.run("preprocess", "--source=synthetic", "--rows=3000", "--output", "out/data/mine")
    assert (tmp_path / "out/data/mine/feature_spec.json").exists() and "read=3,000" in pre.stdout
    # 2. train, Ctrl-C after the first backup (175 steps before the end), the same command again: it
    # resumes and finishes
    train = ["train", "--config", "synthetic_small", "--set", "data.spec_dir=out/data/mine", *SMALL,
             "--set", "train.steps=200", "--set", "train.backup_every_steps=25", "--model_dir", "out/run1"]
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
    export = f"out/run1/export/ranker/{v1}"
    rebuilt = sh.run("reproduce", export, "--data", "out/data/mine", "--output", "out/rebuild")
    assert "environment and data match the fingerprint" in rebuilt.stdout
    assert "reproduced bit for bit" in rebuilt.stdout
    fp1 = json.loads((tmp_path / "out/run1/fingerprint.json").read_text())
    cert = json.loads((tmp_path / "out/rebuild/certificate.json").read_text())
    assert cert["verdict"]["reproduced"] is True
    assert cert["verdict"]["original_weights_sha256"] == cert["verdict"]["rebuilt_weights_sha256"] \
        == fp1["weights_sha256"]
    assert cert["differences"] == [] and cert["workers"] == 1
    assert cert["commands"]["original"] == fp1["command"] and fp1["command"]  # the `recsys train` typed
    assert cert["commands"]["reproduce"].startswith(f"recsys reproduce {export} --data")
    assert fp1["weights_sha256"] in (tmp_path / "out/rebuild/certificate.md").read_text()
    # 3. the same job on the local cluster (2 workers), exported as the next version of the served model
    sh.run("submit", "--config", "synthetic_small", "--set", "data.spec_dir=out/data/mine", *SMALL,
           "--set", "train.steps=60", "--set", "export.base_dir=out/run1/export", "--cluster", "local",
           "--workers", "2", "--model_dir", "out/run2")
    status = json.loads((tmp_path / "out/run2/submit/status.json").read_text())
    assert status["state"] == "succeeded" and status["steps_done"] == 60
    v2 = str(int(v1) + 1)
    assert sorted(p.name for p in (tmp_path / "out/run1/export/ranker").iterdir()) == sorted([v1, v2])
    # 4. compare the one-process model (200 steps) and the two-worker one (60): a limit it passes, exit 0
    diff = sh.run("compare", export, f"out/run1/export/ranker/{v2}", "--data", "out/data/mine",
                  "--max_relative_pd", "2")
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
        # -v brings TensorFlow's C++ logs back (the user's level is passed on to TF), same answers
        loud = subprocess.run([*_recsys(), "-v", "query", "--server", f"127.0.0.1:{port}", "--model_name",
                               "ranker", "--rows", "rows.jsonl"], cwd=tmp_path, env=_env(),
                              capture_output=True, text=True, timeout=120)
        assert loud.returncode == 0 and loud.stdout == query.stdout, loud.stderr[-2000:]
        assert any(".cc:" in line for line in noise_lines(loud.stderr)), loud.stderr[-2000:]
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=60)
    sh.check("serve", out)
    assert "loaded ranker version" in out and server.returncode == 0, out[-3000:]
    # a real error is still printed, in one line that says what failed
    dead = subprocess.run([*_recsys(), "query", "--server", f"127.0.0.1:{port}", "--model_name", "ranker",
                           "--rows", "rows.jsonl", "--timeout=5"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert dead.returncode != 0 and "recsys query:" in dead.stderr and "UNAVAILABLE" in dead.stderr
    assert "Traceback" not in dead.stderr
    # 6. promote the new version against the served one (README: serve a models.config with
    # --allow_config_reload, then `recsys promote`): `stable` moves to the canary's version, the file too
    (tmp_path / "models.config").write_text(f"""model_config_list {{
  config {{
    name: "ranker"
    base_path: "{tmp_path}/out/run1/export/ranker"
    model_platform: "tensorflow"
    model_version_policy {{ specific {{ versions: {v1} versions: {v2} }} }}
    version_labels {{ key: "stable" value: {v1} }}
    version_labels {{ key: "canary" value: {v2} }}
  }}
}}
""")
    port, rest = free_ports(2)
    server = sh.start("serve", "--port", str(port), "--rest_api_port", str(rest), "--model_config_file",
                      "models.config", "--allow_config_reload")
    try:
        _wait(lambda: _ready(rest), "the server", proc=server)
        promoted = sh.run("promote", "--server", f"127.0.0.1:{port}", "--model", "ranker", "--candidate",
                          "canary", "--target", "stable", "--rows", "rows.jsonl", "--model_config_file",
                          "models.config", "--max_relative_pd", "2")
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=60)
    sh.check("serve (promote)", out)
    decision = json.loads(promoted.stdout.strip().splitlines()[-1])
    assert (decision["decision"], decision["target_version_before"], decision["target_version_after"]) == \
        ("promoted", int(v1), int(v2))
    from serving.model_config import read_config

    (ranker,) = read_config(str(tmp_path / "models.config"))
    assert dict(ranker.version_labels) == {"stable": int(v2), "canary": int(v2)}
    assert json.loads((tmp_path / "models.config.history.json").read_text())["moves"][0]["target"] == "stable"
    # 7. a study: replicas, PD beside AUC, the finding and where the report is (not the tables)
    study = sh.run("study", "--config", "synthetic_small", "--set", "data.spec_dir=out/data/mine", *SMALL,
                   "--set", "train.steps=20", "--set", "train.eval_every=10", "--set", "train.verbose=0",
                   "--replicas", "2", "--activations", "relu,smelu", "--output", "out/study",
                   "--bootstrap_draws", "50")
    assert "Finding:" in study.stdout and "report: out/study/results.md" in study.stdout
    assert "| variant" not in study.stdout  # the report's tables stay in the file, not on the terminal
    payload = json.loads((tmp_path / "out/study/results.json").read_text())
    assert [v["variant"] for v in payload["variants"]] == ["relu", "smelu"]
    assert all(len(v["replica_results"]) == 2 for v in payload["variants"])
    # Early stopping by default (--patience 3), but 2 evaluations cannot use up a patience of 3: every
    # replica hit the step maximum, and the report and the finding say so.
    assert "no replica can stop early" not in study.stderr and "needs more than 3 evaluations" in study.stderr
    for v in payload["variants"]:
        assert v["stopping"]["hit_max"] == 2 and v["stopping"]["stopped_max"] == 20
    assert "**hit max (2/2)**" in (tmp_path / "out/study/results.md").read_text()
    assert "short-trained: `relu`, `smelu` hit train.steps=20" in study.stdout


def _ready(rest_port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/ranker", timeout=2) as r:
            return b"AVAILABLE" in r.read()
    except OSError:
        return False
