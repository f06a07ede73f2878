"""Shadow mode: mirrored traffic records PD; primary responses are unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from serving import codec
from serving.model_config import parse_config
from serving.pd import pairwise_pd
from serving.shadow import ShadowConfig
from tests.serving.conftest import expected, predict_request, scrape
from tests.serving.test_grpc import CONFIG
from tests.serving.test_monitor import _events


def _rows(seed: int, n: int = 8):
    rng = np.random.default_rng(seed)
    return {
        "cat": np.array(rng.choice([b"a", b"b", b"c", b"x"], n), dtype=object),
        "x1": rng.normal(size=n).astype(np.float32),
        "x2": rng.normal(size=n).astype(np.float32),
    }


def test_shadow_records_pd_and_leaves_primary_unchanged(base_path, serve, stubs, tmp_path):
    base_path(1)
    base_path(2)
    logdir = str(tmp_path / "shadow")
    shadow = ShadowConfig("tiny", "tiny:canary", sample_rate=1.0, evaluate_every=10, logdir=logdir)
    server = serve(models=parse_config(CONFIG % base_path.path), shadow=shadow, rest_api_port=0)
    plain = serve(models=parse_config(CONFIG % base_path.path))  # the same versions, no shadow
    s, p = stubs(server), stubs(plain)
    primary, shadowed = [], []
    for i in range(30):
        rows = _rows(i)
        got = codec.to_numpy(
            s.predict.Predict(predict_request(rows=rows, label="stable")).outputs["probability"]
        )
        want = codec.to_numpy(
            p.predict.Predict(predict_request(rows=rows, label="stable")).outputs["probability"]
        )
        np.testing.assert_array_equal(got, want)  # exactly the unshadowed answer
        np.testing.assert_allclose(got, expected(1, rows), rtol=1e-6)
        primary.append(got)
        shadowed.append(
            codec.to_numpy(
                p.predict.Predict(predict_request(rows=rows, label="canary")).outputs["probability"]
            )
        )
    values = server.shadow.flush()
    assert server.shadow.mirrored == 30 and server.shadow.errors == 0
    offline = pairwise_pd([np.concatenate(primary), np.concatenate(shadowed)])
    assert values["rows"] == 240
    assert values["relative"] == pytest.approx(offline.relative.mean, rel=1e-6)
    assert values["absolute"] == pytest.approx(offline.absolute.mean, rel=1e-6)
    tag = "pd/shadow_tiny_vs_tiny_canary/relative"
    assert _events(logdir)[tag] == pytest.approx(offline.relative.mean, rel=1e-5)
    metrics = scrape(server.metrics_text())
    labels = (("primary", server.shadow.config.primary), ("shadow", server.shadow.config.target))
    assert metrics[("recsys_shadow_mirrored_total", labels)] == 30
    group = (("group", server.shadow.pd.group),)
    assert metrics[("recsys_pd_relative", group)] == pytest.approx(offline.relative.mean, rel=1e-6)


def test_failing_shadow_never_affects_primary(base_path, serve, stubs):
    base_path(1)
    shadow = ShadowConfig("tiny", "missing_model", sample_rate=1.0)
    server = serve(base=base_path.path, shadow=shadow)
    s = stubs(server)
    for i in range(10):
        rows = _rows(i)
        r = s.predict.Predict(predict_request(rows=rows))
        np.testing.assert_allclose(codec.to_numpy(r.outputs["probability"]), expected(1, rows), rtol=1e-6)
    server.shadow.flush()
    assert server.shadow.errors == 10 and server.shadow.mirrored == 0
