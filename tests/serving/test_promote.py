"""``recsys promote``: the PD gate decides, the label moves on the server and in models.config, or nothing.

In-process servers on 127.0.0.1 serve two real exports of the tiny model (versions 1 and 2 differ by
a logit bias of 0.5); the expected PD is computed from the model's numpy reference. The last test runs
``recsys serve`` and ``recsys promote`` as processes with a client streaming to ``stable`` meanwhile.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from serving import codec, testing
from serving.churn import flip_rates, topk_churn
from serving.gate import Thresholds
from serving.model_config import parse_config
from serving.pd import PDSummary, pairwise_pd
from serving.tools.promote import EXIT_CODES, PromoteConfig, Promotion, read_history, write_atomically
from tests.serving.conftest import BIASES, expected, predict_request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADER = "# models.config of the promote tests\n# (this header survives a rewrite)\n"
CONFIG = (
    'model_config_list {\n  config {\n    name: "tiny"\n    base_path: "%s"\n'
    '    model_platform: "tensorflow"\n    model_version_policy { all {} }\n'
    '    version_labels { key: "stable" value: %d }\n    version_labels { key: "canary" value: %d }\n'
    "  }\n}\n"
)
ROWS = 48


@pytest.fixture
def rows_file(tmp_path) -> str:
    rng = np.random.default_rng(7)
    path = tmp_path / "rows.jsonl"
    with open(path, "w") as fh:
        for i in range(ROWS):
            row = {"cat": "abcz"[i % 4], "x1": float(rng.normal()), "x2": float(rng.normal())}
            fh.write(json.dumps(row) + "\n")
    return str(path)


def _reference(rows_path: str, a: int, b: int) -> list[np.ndarray]:
    rows = [json.loads(line) for line in Path(rows_path).read_text().splitlines()]
    cols = {k: [r[k] for r in rows] for k in ("cat", "x1", "x2")}
    return [
        testing.reference(cols["cat"], cols["x1"], cols["x2"], BIASES[v]).astype(np.float64) for v in (a, b)
    ]


def _expected_pd(rows_path: str, a: int, b: int) -> PDSummary:
    return pairwise_pd(_reference(rows_path, a, b))


def _expected_churn(rows_path: str, a: int, b: int, batch: int = 16) -> float:
    """Top-10 churn with one query per request of ``batch`` rows, as the monitor groups them."""
    preds = _reference(rows_path, a, b)
    return topk_churn(preds, np.arange(len(preds[0])) // batch, k=10)


@pytest.fixture
def setup(base_path, serve, stubs, tmp_path):
    """A server on versions 1, 2 (stable=1, canary=2) and its models.config file."""
    base_path(1)
    base_path(2)
    config = tmp_path / "models.config"
    config.write_text(HEADER + CONFIG % (base_path.path, 1, 2))
    server = serve(models=parse_config(config.read_text()))
    return server, stubs(server), str(config)


def _promotion(server, config_file, rows="", model="tiny", **kwargs) -> dict:
    kwargs.setdefault("thresholds", Thresholds(max_relative_pd=1.0))
    promotion = Promotion(
        PromoteConfig(
            servers=[f"127.0.0.1:{server.port}"],
            model=model,
            model_config_file=config_file,
            rows=rows,
            batch_size=16,
            **kwargs,
        )
    )
    try:
        return promotion.run()
    finally:
        promotion.close()


def _label_version(stub, label: str) -> int:
    status = stub.model.GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(
            model_spec=model_pb2.ModelSpec(name="tiny", version_label=label)
        )
    )
    (one,) = status.model_version_status
    r = stub.predict.Predict(predict_request(label=label))
    assert r.model_spec.version.value == one.version
    np.testing.assert_allclose(codec.to_numpy(r.outputs["probability"]), expected(one.version), rtol=1e-6)
    return one.version


def _file_labels(path: str) -> dict[str, int]:
    (config,) = parse_config(Path(path).read_text())
    return dict(config.version_labels)


def test_passing_gate_moves_the_label_and_rewrites_the_file(setup, rows_file, tmp_path):
    server, stub, config_file = setup
    want = _expected_pd(rows_file, 1, 2)
    log_file = tmp_path / "decisions.jsonl"
    limit = want.relative.mean * 1.5
    record = _promotion(
        server,
        config_file,
        rows_file,
        thresholds=Thresholds(max_relative_pd=limit, max_topk_churn=1.0),
        log_file=str(log_file),
    )
    assert record["decision"] == "promoted" and EXIT_CODES[record["decision"]] == 0 and record["applied"]
    assert record["pd"]["relative"] == pytest.approx(want.relative.mean, rel=1e-5)
    assert record["pd"]["absolute"] == pytest.approx(want.absolute.mean, rel=1e-5)
    assert record["pd"]["rows"] == ROWS and record["requests"] == 3
    assert record["pd"]["topk_churn"] == pytest.approx(_expected_churn(rows_file, 1, 2), abs=1e-9)
    assert record["pd"]["flip_rate"] == pytest.approx(flip_rates(*_reference(rows_file, 1, 2)).flip_rate)
    assert record["thresholds"]["max_relative_pd"] == limit and record["thresholds"]["max_topk_churn"] == 1.0
    assert (record["target_version_before"], record["candidate_version"], record["target_version_after"]) == (
        1,
        2,
        2,
    )
    assert _label_version(stub, "stable") == 2 and _label_version(stub, "canary") == 2
    text = Path(config_file).read_text()
    assert text.startswith(HEADER) and _file_labels(config_file) == {"stable": 2, "canary": 2}
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []  # the temp file was renamed
    (move,) = read_history(config_file + ".history.json")
    assert (move["action"], move["target_version_before"], move["target_version_after"]) == ("promote", 1, 2)
    (logged,) = [json.loads(line) for line in Path(log_file).read_text().splitlines()]
    assert logged == record


def test_failing_gate_changes_nothing(setup, rows_file):
    server, stub, config_file = setup
    before = Path(config_file).read_bytes()
    want = _expected_pd(rows_file, 1, 2)
    record = _promotion(
        server, config_file, rows_file, thresholds=Thresholds(max_relative_pd=want.relative.mean * 0.5)
    )
    assert record["decision"] == "refused" and EXIT_CODES[record["decision"]] == 1 and not record["applied"]
    assert record["alerts"] and record["alerts"][0].startswith("relative_pd=")
    assert record["pd"]["relative"] == pytest.approx(want.relative.mean, rel=1e-5)
    assert record["target_version_after"] == 1
    assert Path(config_file).read_bytes() == before
    assert not os.path.exists(config_file + ".history.json")
    assert _label_version(stub, "stable") == 1


def test_dry_run_decides_and_changes_nothing(setup, rows_file):
    server, stub, config_file = setup
    before = Path(config_file).read_bytes()
    record = _promotion(server, config_file, rows_file, dry_run=True)
    assert record["decision"] == "promoted" and record["dry_run"] and not record["applied"]
    assert record["target_version_after"] == 2 and "dry run" in record["reason"]
    assert Path(config_file).read_bytes() == before
    assert not os.path.exists(config_file + ".history.json")
    assert _label_version(stub, "stable") == 1


def test_rollback_restores_the_previous_version(setup, rows_file):
    server, stub, config_file = setup
    assert _promotion(server, config_file, rows_file)["decision"] == "promoted"
    assert _label_version(stub, "stable") == 2
    dry = _promotion(server, config_file, rollback=True, dry_run=True)
    assert dry["decision"] == "rolled_back" and not dry["applied"] and _label_version(stub, "stable") == 2
    record = _promotion(server, config_file, rollback=True)
    assert record["decision"] == "rolled_back" and EXIT_CODES[record["decision"]] == 0 and record["applied"]
    assert (record["target_version_before"], record["target_version_after"]) == (2, 1)
    assert _label_version(stub, "stable") == 1 and _file_labels(config_file) == {"stable": 1, "canary": 2}
    moves = read_history(config_file + ".history.json")
    assert [m["action"] for m in moves] == ["promote", "rollback"]
    again = _promotion(server, config_file, rollback=True)  # nothing left to undo
    assert again["decision"] == "error" and "no promotion" in again["reason"]
    assert _label_version(stub, "stable") == 1


def test_already_promoted_is_unchanged(setup, rows_file):
    server, stub, config_file = setup
    assert _promotion(server, config_file, rows_file)["decision"] == "promoted"
    before = Path(config_file).read_bytes()
    record = _promotion(server, config_file, rows_file)
    assert record["decision"] == "unchanged" and EXIT_CODES["unchanged"] == 0
    assert Path(config_file).read_bytes() == before


@pytest.mark.parametrize(
    "change, kwargs, message",
    [
        ("file_disagrees", {}, "reconcile them first"),
        ("missing_label", {"candidate": "beta"}, "has no label 'beta'"),
        ("no_threshold", {"thresholds": Thresholds()}, "needs a threshold"),
        ("no_rows", {"rows": ""}, "needs --rows"),
        ("unknown_model", {"model": "other"}, "not in the model config file"),
        ("bad_config", {}, "ParseError"),
    ],
)
def test_errors_change_nothing(setup, rows_file, base_path, change, kwargs, message):
    server, stub, config_file = setup
    if change == "file_disagrees":
        with open(config_file, "w") as fh:
            fh.write(CONFIG % (base_path.path, 2, 1))
    if change == "bad_config":
        with open(config_file, "a") as fh:
            fh.write("model_config_list { config { nme: 1 } }\n")
    before = Path(config_file).read_bytes()
    kwargs = dict(kwargs)
    rows = kwargs.pop("rows", rows_file)
    record = _promotion(server, config_file, rows, **kwargs)
    assert record["decision"] == "error" and EXIT_CODES["error"] == 2, record
    assert message in record["reason"]
    assert Path(config_file).read_bytes() == before
    assert _label_version(stub, "stable") == 1


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "recsys.cli", "promote", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )


def test_cli_against_recsys_serve_with_a_stream_to_stable(base_path, rows_file, tmp_path):
    base_path(1)
    base_path(2)
    config_file = tmp_path / "models.config"
    config_file.write_text(HEADER + CONFIG % (base_path.path, 1, 2))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recsys.cli",
            "serve",
            "--port=0",
            f"--model_config_file={config_file}",
            "--model_config_file_poll_wait_seconds=0.2",
            "--file_system_poll_wait_seconds=0.2",
            "--allow_config_reload=true",  # promote moves the label with a reload request
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    seen: list[int] = []
    failures: list[str] = []
    stop = threading.Event()
    finished: list[bool] = []
    client = None
    try:
        line = proc.stdout.readline()
        assert line.startswith("recsys serve: ready grpc=127.0.0.1:"), line
        address = line.split("grpc=")[1].split()[0]

        def stream() -> None:
            from tensorflow_serving.apis import prediction_service_pb2_grpc

            with grpc.insecure_channel(address) as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                while not stop.is_set() and len(seen) < 200000:
                    try:
                        r = stub.Predict(predict_request(label="stable"), timeout=10)
                        v = r.model_spec.version.value
                        if not np.allclose(codec.to_numpy(r.outputs["probability"]), expected(v), rtol=1e-6):
                            failures.append(f"wrong numbers for version {v}")
                        seen.append(v)
                    except grpc.RpcError as err:
                        failures.append(f"{err.code()}: {err.details()}")
                    stop.wait(0.005)  # a steady stream (~200 requests/s), not a saturating one
            finished.append(True)

        client = threading.Thread(target=stream, daemon=True)
        client.start()
        base = [
            f"--server={address}",
            "--model=tiny",
            f"--rows={rows_file}",
            f"--model_config_file={config_file}",
            "--batch_size=16",
        ]
        original = config_file.read_bytes()
        refused = _cli(*base, "--max_relative_pd=0.0001")
        assert refused.returncode == 1, refused.stderr
        assert json.loads(refused.stdout)["decision"] == "refused" and "REFUSED" in refused.stderr
        assert config_file.read_bytes() == original

        promoted = _cli(*base, "--max_relative_pd=1", "--max_churn=1")  # the deprecated alias still works
        assert promoted.returncode == 0, promoted.stderr
        assert "--max_churn is deprecated" in promoted.stderr
        record = json.loads(promoted.stdout)
        assert record["decision"] == "promoted" and record["target_version_after"] == 2
        assert "PROMOTED" in promoted.stderr and "relative PD" in promoted.stderr
        assert _file_labels(str(config_file)) == {"stable": 2, "canary": 2}
        deadline = time.monotonic() + 60
        while seen.count(2) < 50 and time.monotonic() < deadline and client.is_alive():
            time.sleep(0.05)
        assert seen.count(2) >= 50  # the stream carried on on the new version

        rolled = _cli(*base, "--rollback")
        assert rolled.returncode == 0, rolled.stderr
        assert json.loads(rolled.stdout)["target_version_after"] == 1
        assert _file_labels(str(config_file)) == {"stable": 1, "canary": 2}
        mark = len(seen)
        deadline = time.monotonic() + 60
        while seen[mark:].count(1) < 50 and time.monotonic() < deadline and client.is_alive():
            time.sleep(0.05)
        assert seen[mark:].count(1) >= 50  # and back on the old version after the rollback

        error = _cli(
            f"--server={address}", "--model=nope", f"--rows={rows_file}", f"--model_config_file={config_file}"
        )
        assert error.returncode == 2 and json.loads(error.stdout)["decision"] == "error"
        assert client.is_alive()  # the stream never died
    finally:
        stop.set()  # the stream stops before the server does (a shutdown cancels in-flight calls)
        if client is not None:
            client.join(timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert finished == [True] and failures == []
    # stable answered 1, then 2 after the promotion, then 1 after the rollback: no flapping in between
    changes = [v for i, v in enumerate(seen) if i == 0 or seen[i - 1] != v]
    assert changes == [1, 2, 1], changes[:10]


def test_every_server_moves(setup, rows_file, serve, stubs):
    server, stub, config_file = setup
    other = serve(models=parse_config(Path(config_file).read_text()))
    promotion = Promotion(
        PromoteConfig(
            servers=[f"127.0.0.1:{server.port}", f"127.0.0.1:{other.port}"],
            model="tiny",
            model_config_file=config_file,
            rows=rows_file,
            thresholds=Thresholds(max_relative_pd=1.0),
        )
    )
    try:
        record = promotion.run()
    finally:
        promotion.close()
    assert record["decision"] == "promoted" and len(record["servers"]) == 2
    assert _label_version(stub, "stable") == 2 and _label_version(stubs(other), "stable") == 2


def test_cli_usage_errors_exit_2_not_1():
    """1 means 'refused' to a release script: a bad flag or a missing one must not look like it."""
    bad_flag = _cli("--max_relative_pd=abc", "--model=tiny", "--model_config_file=x")
    assert bad_flag.returncode == 2 and "recsys promote: flag --max_relative_pd=abc" in bad_flag.stderr
    missing = _cli("--server=127.0.0.1:1")
    assert missing.returncode == 2 and "model and model_config_file are required" in missing.stderr


def test_write_atomically_replaces_the_file_and_keeps_its_mode(tmp_path):
    path = tmp_path / "models.config"
    path.write_text("old")
    os.chmod(path, 0o640)
    write_atomically(str(path), "new")
    assert path.read_text() == "new" and (os.stat(path).st_mode & 0o777) == 0o640
    assert os.listdir(tmp_path) == ["models.config"]  # no temp file left
