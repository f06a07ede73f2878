"""The study's dashboards at a real size (5 variants x 4 replicas), served by real TensorBoard and drawn by
real Chromium: what TensorBoard's HTTP API says is plotted, and that the PD charts are filled on first load.

The logdir is written from synthetic predictions through the study's own path (analysis.analyse and
analysis.write_dashboards); no training is needed to test what TensorBoard makes of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest

from recsys.repro import accuracy
from recsys.repro.summaries import group_tag
from recsys.study import analysis, dashboards
from recsys.study.variants import plan_replica
from serving.pd import pairwise_pd

VARIANTS = ("relu", "smelu(beta=0.5)", "smelu(beta=1)", "gelu", "swish")
NOISE = (0.6, 0.3, 0.2, 0.35, 0.45)  # per-replica logit noise: sets each variant's PD
STEPS = (100, 200, 300)
REPLICAS = 4
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--virtual-time-budget=20000",
    "--window-size=1400,1000",
]


def synthetic_study(n: int = 3000, seed: int = 0) -> tuple[list[analysis.VariantRecords], np.ndarray]:
    """Replicas whose noise shrinks over training, more for smoother variants: PD falls, AUC rises."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.25).astype(np.float64)
    logit = rng.normal(size=n) + 1.5 * labels - 1.0
    out = []
    for variant, noise in zip(VARIANTS, NOISE, strict=True):
        records = []
        for _ in range(REPLICAS):
            z = rng.normal(size=n)
            records.append({s: 1 / (1 + np.exp(-(logit * s / 300 + noise * (400 - s) / 300 * z)))
                            for s in STEPS})
        plans = tuple(plan_replica(variant, r, ("seed", "order"), 0, 0.0).as_dict() for r in range(REPLICAS))
        out.append(analysis.VariantRecords(variant, tuple(records), plans))
    return out, labels


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[str, analysis.Analysis]:
    logdir = str(tmp_path_factory.mktemp("dash") / "tensorboard")
    variants, labels = synthetic_study()
    result = analysis.analyse(variants, labels, draws=200)
    analysis.write_dashboards(logdir, variants, labels, result, ("seed", "order"))
    return logdir, result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, body: dict | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@contextlib.contextmanager
def _tensorboard(logdir: str, runs: int) -> Iterator[str]:
    """A real TensorBoard on 127.0.0.1, yielded once it lists all ``runs`` runs."""
    port = _free_port()
    tb = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    proc = subprocess.Popen([tb, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port),
                             "--reload_interval", "1", "--load_fast", "false"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                if len(_get(f"{url}/data/runs")) >= runs:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"TensorBoard did not come up: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def tensorboard_url(study) -> Iterator[str]:
    with _tensorboard(study[0], dashboards.run_count(len(VARIANTS), REPLICAS)) as url:
        yield url


def test_every_variant_is_a_run_on_the_same_tags_with_the_study_values(study, tensorboard_url):
    _, result = study
    runs = _get(f"{tensorboard_url}/data/runs")
    assert len(runs) == dashboards.run_count(5, 4) == 27 <= dashboards.MAX_RUNS_SELECTED_BY_DEFAULT
    tags = _get(f"{tensorboard_url}/data/plugin/scalars/tags")
    for variant in VARIANTS:
        run = f"pd/{group_tag(variant)}"
        want_tags = {"pd/relative", "pd/relative_ci_lower", "pd/relative_ci_upper", "auc/mean",
                     "auc/mean_ci_lower", "pd_ratio/vs_baseline_ci_upper", "auc_delta/vs_baseline"}
        assert want_tags <= set(tags[run])
        for tag, key in (("pd/relative", "relative_pd"), ("pd/relative_ci_lower", "relative_pd_ci_lower"),
                         ("auc/mean", "auc"), ("pd_ratio/vs_baseline_ci_upper", "pd_ratio_ci_upper")):
            query = urllib.parse.urlencode({"run": run, "tag": tag})
            series = _get(f"{tensorboard_url}/data/plugin/scalars/scalars?{query}")
            assert [row[1] for row in series] == list(STEPS)
            want = [p[key] for p in result.over_time[variant]]
            assert [row[2] for row in series] == pytest.approx(want, rel=1e-6), (variant, tag)
    # What the multiline chart fetches: its tag regex, per run.
    query = urllib.parse.urlencode({"run": "pd/smelu_beta_1", "tag": "^pd/relative$"})
    got = _get(f"{tensorboard_url}/data/plugin/custom_scalars/scalars?{query}")
    assert got["regex_valid"] and list(got["tag_to_events"]) == ["pd/relative"]
    # The synthetic data make every smooth variant disagree significantly less than relu.
    assert [result.final.variant(v).verdict for v in VARIANTS[1:]] == [
        "fewer disagreements than baseline (significant)"] * 4


def test_layout_charts_regex_over_run_independent_tags_with_ci_margins(tensorboard_url):
    layout = _get(f"{tensorboard_url}/data/plugin/custom_scalars/layout")
    charts = {c["title"]: c for c in layout["category"][0]["chart"]}
    assert charts["relative PD (mean over replica pairs)"]["multiline"]["tag"] == ["^pd/relative$"]
    assert charts["AUC (mean over replicas)"]["multiline"]["tag"] == ["^auc/mean$"]
    margin = charts["relative PD with 95% CI"]["margin"]["series"]
    assert margin == [{"value": "pd/relative", "lower": "pd/relative_ci_lower",
                       "upper": "pd/relative_ci_upper"}]
    assert charts["PD ratio vs relu with 95% CI (below 1: fewer disagreements)"]["margin"]["series"][0][
        "lower"] == "pd_ratio/vs_baseline_ci_lower"
    assert "AUC with 95% CI" in charts


def test_hparams_has_one_row_per_replica(study, tensorboard_url):
    _, result = study
    experiment = _get(f"{tensorboard_url}/data/plugin/hparams/experiment", {"experimentName": ""})
    hparams = {h["name"] for h in experiment["hparamInfos"]}
    assert {"variant", "activation", "param.beta", "seed", "data_seed", "sources", "replica"} <= hparams
    metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert {"replica/relative_pd", "replica/auc", "variant/relative_pd", "variant/auc"} <= metrics
    groups = _get(f"{tensorboard_url}/data/plugin/hparams/session_groups", {
        "experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS"], "colParams": [],
        "startIndex": 0, "sliceSize": 100})["sessionGroups"]
    assert sorted(g["name"] for g in groups) == sorted(
        f"{v}/replica-{i}" for v in VARIANTS for i in range(REPLICAS))
    row = next(g for g in groups if g["name"] == "smelu(beta=0.5)/replica-2")
    assert row["hparams"]["activation"] == "smelu" and row["hparams"]["param.beta"] == 0.5
    assert row["hparams"]["variant"] == "smelu(beta=0.5)" and row["hparams"]["seed"] == 2
    assert row["hparams"]["sources"] == "seed,order"
    values = {m["name"]["tag"]: m["value"] for m in row["metricValues"]}
    final = result.final.variant("smelu(beta=0.5)")
    assert values["variant/relative_pd"] == pytest.approx(final.relative_pd.estimate, rel=1e-6)
    assert values["variant/auc"] == pytest.approx(final.auc.estimate, rel=1e-6)
    variants, labels = synthetic_study()  # the fixture's inputs again (deterministic)
    preds = variants[VARIANTS.index("smelu(beta=0.5)")].final()
    want_pd = np.mean([pairwise_pd([preds[2], preds[j]], percentiles=()).relative.mean for j in (0, 1, 3)])
    assert values["replica/relative_pd"] == pytest.approx(want_pd, rel=1e-6)
    assert values["replica/auc"] == pytest.approx(accuracy.auc(labels, preds[2]), rel=1e-6)


def _chromium() -> str:
    """Debian's chromium (.ci/run installs it); the screenshot tests skip without it."""
    path = shutil.which("chromium")
    if not path:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    return path


def _screenshot(url: str, where, fragment: str = "custom_scalars") -> np.ndarray:
    png = where / "custom_scalars.png"
    subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={where / 'profile'}",
                    f"--screenshot={png}", f"{url}/?darkMode=false#{fragment}"],
                   capture_output=True, timeout=180, check=True)
    from PIL import Image

    with Image.open(png) as img:
        return np.asarray(img.convert("RGB")).astype(int)


def _line_colours(pixels: np.ndarray) -> list[int]:
    """Pixel counts of the distinct saturated colours in the first row of charts (relative PD, AUC).

    Grids, axes and text are grey or black; only plotted series are coloured.
    """
    area = pixels[150:360, 380:]
    coloured = area[(area.max(-1) - area.min(-1)) > 90] // 32
    _, counts = np.unique(coloured[:, 0] * 64 + coloured[:, 1] * 8 + coloured[:, 2], return_counts=True)
    return sorted(counts.tolist(), reverse=True)


def test_chromium_draws_every_variant_on_first_load(tensorboard_url, tmp_path):
    pixels = _screenshot(tensorboard_url, tmp_path)
    assert pixels.shape[:2] == (1000, 1400)
    lines = [c for c in _line_colours(pixels) if c >= 300]
    assert len(lines) >= len(VARIANTS), _line_colours(pixels)[:10]  # one coloured line per variant


def _smoothing_knob_x(pixels: np.ndarray) -> int:
    """The right edge of the orange part of the sidebar's Smoothing slider (knob and filled track)."""
    band = pixels[250:280, 30:260]
    r, g, b = band[..., 0], band[..., 1], band[..., 2]
    _, xs = np.nonzero((r > 200) & (g > 90) & (g < 190) & (b < 90))
    return int(xs.max()) + 30


def _faded_pixels(pixels: np.ndarray) -> int:
    """Light tinted pixels in the first row of charts: the faded raw lines drawn behind smoothed ones."""
    area = pixels[150:360, 380:]
    spread = area.max(-1) - area.min(-1)
    return int(((spread > 25) & (spread <= 90) & (area.min(-1) > 150)).sum())


def test_the_printed_url_opens_the_charts_with_smoothing_0(tensorboard_url, tmp_path):
    """TensorBoard's default smoothing (0.6) bends a line of a few evaluations away from its points and
    draws the raw line faded behind it; the URL recsys prints sets it to 0 (the slider at its left end)."""
    url = dashboards.open_url()
    assert url.startswith("http://127.0.0.1:6006/#")
    for name in ("default", "printed"):
        (tmp_path / name).mkdir()
    smooth = _screenshot(tensorboard_url, tmp_path / "default", "custom_scalars")
    plain = _screenshot(tensorboard_url, tmp_path / "printed", url.split("#", 1)[1])
    assert _smoothing_knob_x(smooth) > 150 and _smoothing_knob_x(plain) < 60  # 0.6 of the way vs 0
    assert _faded_pixels(plain) * 2 < _faded_pixels(smooth), (_faded_pixels(plain), _faded_pixels(smooth))
    assert len([c for c in _line_colours(plain) if c >= 300]) >= len(VARIANTS)


def test_more_than_40_runs_would_leave_every_chart_empty(study, tmp_path):
    """The cause of the empty charts: past 40 runs TensorBoard selects none on first load."""
    from recsys.compat import tf

    logdir = str(tmp_path / "crowded")
    shutil.copytree(study[0], logdir)
    extra = dashboards.MAX_RUNS_SELECTED_BY_DEFAULT + 1 - dashboards.run_count(5, 4)
    for i in range(extra):
        writer = tf.summary.create_file_writer(os.path.join(logdir, "other", f"run-{i}"))
        with writer.as_default():
            tf.summary.scalar("x", 1.0, step=0)
        writer.close()
    with _tensorboard(logdir, dashboards.MAX_RUNS_SELECTED_BY_DEFAULT + 1) as url:
        assert _line_colours(_screenshot(url, tmp_path)) == []


def test_replica_hparams_name_the_activation_and_its_parameters():
    plan = plan_replica("gsmelu(alpha=1, beta=2)", 3, ("order",), 10, 0.0).as_dict()
    hp = dashboards.replica_hparams("gsmelu(alpha=1, beta=2)", plan, ("order",))
    assert (hp["activation"], hp["param.alpha"], hp["param.beta"]) == ("gsmelu", 1.0, 2.0)
    assert (hp["seed"], hp["data_seed"], hp["replica"], hp["sources"]) == (10, 13, 3, "order")
    assert dashboards.replica_hparams("relu", plan, ())["sources"] == "none"
    assert dashboards._domain({True, 0.5}) is None and dashboards._domain({0.5, 1.0}) is not None
    assert dashboards.tensorboard_commands("out", 9, 4)[0].startswith(
        f"tensorboard --logdir {os.path.join('out', 'tensorboard', 'pd')} ")
    assert len(dashboards.tensorboard_commands("out", 5, 4)) == 1
