"""The replica-divergence monitor: online PD equals the offline PD of the same predictions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from serving import testing
from serving.churn import pairwise_flip_rate, topk_churn
from serving.gate import Thresholds
from serving.model_config import parse_config, single_model_config
from serving.pd import pairwise_pd
from serving.prometheus import MetricsServer
from serving.tools.monitor import Monitor, MonitorConfig
from tests.serving.conftest import BIASES, scrape
from tests.serving.test_grpc import CONFIG

N_ROWS = 300


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory):
    rng = np.random.default_rng(7)
    rows = [
        {"cat": str(rng.choice(["a", "b", "c", "d"])), "x1": float(rng.normal()), "x2": float(rng.normal())}
        for _ in range(N_ROWS)
    ]
    path = tmp_path_factory.mktemp("rows") / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path), rows


@pytest.fixture(scope="module")
def servers(exported, tmp_path_factory):
    """Server A: versions 1, 2 with labels stable=1, canary=2. Server B: version 3 as 'other'."""
    from serving.server import ModelServer, ServerOptions

    base = str(tmp_path_factory.mktemp("mon") / "tiny")
    for v in (1, 2):
        testing.copy_version(exported[v], base, v)
    other = str(tmp_path_factory.mktemp("mon") / "other")
    testing.copy_version(exported[3], other, 3)
    a = ModelServer(ServerOptions(parse_config(CONFIG % base))).start()
    b = ModelServer(ServerOptions([single_model_config("other", other)])).start()
    yield a, b
    a.stop(grace=0.1)
    b.stop(grace=0.1)


def _offline(rows, versions):
    cat = [r["cat"] for r in rows]
    x1 = np.array([r["x1"] for r in rows], np.float32)
    x2 = np.array([r["x2"] for r in rows], np.float32)
    return [testing.reference(cat, x1, x2, BIASES[v]) for v in versions]


def _events(logdir: str) -> dict[str, float]:
    from recsys.compat import tf

    out = {}
    for name in os.listdir(logdir):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(logdir, name)):
            for value in event.summary.value:
                if value.tag.startswith("pd/"):
                    out[value.tag] = float(tf.make_ndarray(value.tensor))
    return out


def test_check_equals_offline_pd_tensorboard_and_prometheus(servers, rows_file, tmp_path):
    a, b = servers
    path, rows = rows_file
    replicas = [f"127.0.0.1:{a.port}/tiny:stable", f"127.0.0.1:{a.port}/tiny@2", f"127.0.0.1:{b.port}/other"]
    logdir = str(tmp_path / "tb")
    monitor = Monitor(
        MonitorConfig(
            replicas, rows=path, batch_size=32, logdir=logdir, k=5,
            thresholds=Thresholds(max_relative_pd=10.0),
        )
    )
    metrics = MetricsServer(monitor.metrics_text)
    try:
        values = monitor.check()
        offline_preds = _offline(rows, [1, 2, 3])
        offline = pairwise_pd(offline_preds)
        assert values["rows"] == N_ROWS and values["alerts"] == []
        assert values["relative"] == pytest.approx(offline.relative.mean, rel=1e-6)
        assert values["absolute"] == pytest.approx(offline.absolute.mean, rel=1e-6)
        assert values["share_above"] == pytest.approx(offline.share_above.mean, rel=1e-6)
        for name, stats in offline.percentiles.items():
            assert values[f"relative_{name}"] == pytest.approx(stats.mean, rel=1e-6)
        qids = np.arange(N_ROWS) // 32  # one request of 32 rows = one query
        churn = topk_churn(offline_preds, qids, k=5)
        assert values["topk_churn"] == pytest.approx(churn, rel=1e-9)
        assert values["flip_rate"] == pytest.approx(pairwise_flip_rate(offline_preds), abs=1e-12)
        # TensorBoard: the study's tags (recsys.repro.summaries) with the same numbers
        events = _events(logdir)
        from recsys.repro import summaries

        for tag, value in summaries.pd_scalars("replicas", offline).items():
            assert events[tag] == pytest.approx(value, rel=1e-5), tag
        assert events["pd/replicas/topk_churn"] == pytest.approx(churn, rel=1e-5)
        # Prometheus exposition
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics.port}/metrics", timeout=10).read().decode()
        prom = scrape(text)
        assert prom[("recsys_pd_relative", (("group", "replicas"),))] == pytest.approx(offline.relative.mean)
        assert prom[("recsys_pd_rows_total", (("group", "replicas"),))] == N_ROWS
        assert prom[("recsys_monitor_requests_total", (("group", "replicas"),))] == 10
    finally:
        metrics.stop()
        monitor.close()


def test_sliding_window_and_alerts(servers, rows_file):
    a, _ = servers
    path, rows = rows_file
    replicas = [f"127.0.0.1:{a.port}/tiny@1", f"127.0.0.1:{a.port}/tiny@2"]
    monitor = Monitor(
        MonitorConfig(
            replicas,
            rows=path,
            batch_size=50,
            window=100,
            evaluate_every=4,
            thresholds=Thresholds(max_relative_pd=1e-4),
        )
    )
    seen = []
    try:
        monitor.run(max_requests=9, on_evaluate=seen.append)  # 450 rows: wraps around the 300-row file
    finally:
        monitor.close()
    assert len(seen) == 3  # after requests 4 and 8, and the final one
    sent = (rows * 2)[:450]
    offline = pairwise_pd(_offline(sent[-100:], [1, 2]))
    assert seen[-1]["rows"] == 100
    assert seen[-1]["relative"] == pytest.approx(offline.relative.mean, rel=1e-6)
    assert seen[-1]["alerts"] and monitor.pd.alerts == 3


def _cli(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", "recsys.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )


def test_check_gate_cli_exit_codes(servers, rows_file):
    a, _ = servers
    path, rows = rows_file
    offline = pairwise_pd(_offline(rows, [1, 2])).relative.mean
    common = [
        "monitor",
        "--check",
        f"--replica=127.0.0.1:{a.port}/tiny:stable",
        f"--replica=127.0.0.1:{a.port}/tiny:canary",
        f"--rows={path}",
    ]
    passed = _cli(*common, f"--max_relative_pd={offline * 1.01}")
    assert passed.returncode == 0, passed.stderr
    assert json.loads(passed.stdout.strip().splitlines()[-1])["relative"] == pytest.approx(offline, rel=1e-6)
    failed = _cli(*common, f"--max_relative_pd={offline * 0.99}")
    assert failed.returncode == 1 and "CHECK FAILED" in failed.stderr


def test_query_cli_grpc(servers, rows_file, tmp_path):
    a, _ = servers
    path, rows = rows_file
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("cat,x1,x2\n" + "".join(f"{r['cat']},{r['x1']},{r['x2']}\n" for r in rows[:5]))
    out = _cli(
        "query",
        f"--server=127.0.0.1:{a.port}",
        "--model_name=tiny",
        "--label=stable",
        f"--rows={csv_path}",
        "--batch_size=2",
    )
    assert out.returncode == 0, out.stderr
    got = [json.loads(line)["probability"] for line in out.stdout.strip().splitlines()]
    np.testing.assert_allclose(got, _offline(rows[:5], [1])[0], rtol=1e-6)


def test_request_log_replay(servers, exported):
    """A captured PredictionLog file (here: the version's warm-up file) replayed to two replicas."""
    from serving.tools import client
    from serving.warmup import WARMUP_PATH

    a, _ = servers
    log_path = os.path.join(exported[1], WARMUP_PATH)
    monitor = Monitor(
        MonitorConfig([f"127.0.0.1:{a.port}/tiny@1", f"127.0.0.1:{a.port}/tiny@2"], request_log=log_path)
    )
    try:
        values = monitor.check()
    finally:
        monitor.close()
    requests = list(client.read_request_log(log_path))
    preds = [
        np.concatenate([testing.reference(r["cat"], r["x1"], r["x2"], BIASES[v]) for r in requests])
        for v in (1, 2)
    ]
    assert values["rows"] == sum(len(r["cat"]) for r in requests) == 6
    assert values["relative"] == pytest.approx(pairwise_pd(preds).relative.mean, rel=1e-5)


def test_server_request_log_is_replayed_by_the_monitor(base_path, serve, stubs, tmp_path):
    """recsys serve --request_log_file captures live requests; the monitor replays them."""
    from serving.tools import client
    from tests.serving.conftest import ROWS, predict_request

    base_path(1)
    base_path(2)
    log_path = str(tmp_path / "requests.tfrecord")
    server = serve(
        models=parse_config(CONFIG % base_path.path), request_log_file=log_path, request_log_sample_rate=1.0
    )
    s = stubs(server)
    for n in (1, 2, 4):
        s.predict.Predict(predict_request(rows={k: v[:n] for k, v in ROWS.items()}, label="stable"))
    server.core.request_log.flush()
    logged = list(client.read_request_log(log_path))
    assert [len(r["cat"]) for r in logged] == [1, 2, 4]
    np.testing.assert_array_equal(logged[2]["x1"], ROWS["x1"])
    monitor = Monitor(
        MonitorConfig(
            [f"127.0.0.1:{server.port}/tiny:stable", f"127.0.0.1:{server.port}/tiny:canary"],
            request_log=log_path,
        )
    )
    try:
        values = monitor.check()
    finally:
        monitor.close()
    preds = [
        np.concatenate([testing.reference(r["cat"], r["x1"], r["x2"], BIASES[v]) for r in logged])
        for v in (1, 2)
    ]
    assert values["rows"] == 7
    assert values["relative"] == pytest.approx(pairwise_pd(preds).relative.mean, rel=1e-5)
