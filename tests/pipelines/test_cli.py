"""``recsys preprocess`` as people run it (subprocesses), and Beam option pass-through."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipelines.pipeline import make_pipeline

RECSYS = [sys.executable, "-c", "import sys; from recsys.cli import main; main(sys.argv)"]


def _recsys(*args, cwd=None):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        RECSYS + ["preprocess", *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd
    )


def test_cli_synthetic_run_prints_summary_and_passes_beam_options(tmp_path):
    out = tmp_path / "out"
    res = _recsys(
        "--source=synthetic",
        "--rows=3000",
        "--seed=2",
        f"--output={out}",
        "--eval_fraction=0.2",
        "--",
        "--job_name=cli-test",
        f"--temp_location={tmp_path}",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "1_lines_read" in res.stdout and "rows/s" in res.stdout
    assert "read=3,000 = train" in res.stdout
    with open(out / "feature_spec.json") as fh:
        spec = json.load(fh)
    assert spec["counts"]["read"] == 3000
    assert spec["split"]["eval_fraction"] == 0.2
    assert 0.1 < spec["counts"]["written_eval"] / 3000 < 0.3


@pytest.mark.parametrize(
    "args, message",
    [
        (["--source=csv", "--input=x.csv"], "--output is required"),
        (["--source=csv", "--output=o", "--input=x.csv"], "needs --schema"),
        (["--source=criteo", "--output=o", "--input=/no/such/file.tsv"], "input not found"),
        (["--source=nosuch", "--output=o"], "criteo|movielens|csv|synthetic"),
        (["--source=criteo", "--output=o"], "needs --input"),
        (["--source=synthetic", "--output=o", "--cardinalities=3,4"], "needs 26 values"),
        (["--source=synthetic", "--output=o", "--num_oov_buckets=0"], "num_oov_buckets must be >= 1"),
        (["--source=synthetic", "--output=o", "--", "stray"], "unexpected arguments"),
    ],
)
def test_cli_errors_are_one_clear_line(tmp_path, args, message):
    res = _recsys(*args, cwd=tmp_path)
    assert res.returncode != 0
    assert message in res.stderr


def test_cli_schema_error_lists_valid_kinds(tmp_path):
    schema = tmp_path / "s.yaml"
    schema.write_text(
        "columns:\n  - {name: a, kind: words}\n  - {name: y, kind: label}\nlabel: {column: y}\n"
    )
    res = _recsys("--source=csv", f"--schema={schema}", "--input=x", "--output=o", cwd=tmp_path)
    assert res.returncode != 0
    assert "kind 'words'" in res.stderr and "multi_categorical" in res.stderr


def test_beam_options_pass_through_unchanged():
    from apache_beam.options.pipeline_options import (
        DirectOptions,
        GoogleCloudOptions,
        SetupOptions,
        StandardOptions,
    )
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    p = make_pipeline(
        [
            "--runner=DirectRunner",
            "--direct_num_workers=2",
            "--direct_running_mode=multi_processing",
            "--project=proj",
            "--region=europe-west1",
            "--setup_file=./setup.py",
        ]
    )
    assert isinstance(p.runner, FnApiRunner)  # never Prism (it needs a download)
    assert p.options.view_as(DirectOptions).direct_num_workers == 2
    assert p.options.view_as(DirectOptions).direct_running_mode == "multi_processing"
    assert p.options.view_as(GoogleCloudOptions).project == "proj"
    assert p.options.view_as(GoogleCloudOptions).region == "europe-west1"
    assert p.options.view_as(SetupOptions).setup_file == "./setup.py"
    other = make_pipeline(["--runner=BundleBasedDirectRunner"])
    assert other.options.view_as(StandardOptions).runner == "BundleBasedDirectRunner"
    assert not isinstance(other.runner, FnApiRunner)


def test_cli_error_budget_message(tmp_path):
    bad = tmp_path / "bad.tsv"
    good = "\t".join(["1"] + ["3"] * 13 + ["abcd1234"] * 26)
    bad.write_text("\n".join([good] * 20 + ["only\tthree\tfields"]) + "\n")
    res = _recsys("--source=criteo", f"--input={bad}", f"--output={tmp_path / 'o'}")
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last == (
        f"recsys preprocess: 1 of 21 rows (4.76%) were dead-lettered, above "
        f"--max_error_fraction=0.01; see {tmp_path / 'o'}/errors-*.jsonl. No feature spec was written."
    )
    # One line: not Beam's log of the DoFn's exception and its traceback first.
    assert "Traceback" not in res.stderr and res.stderr.count("were dead-lettered") == 1, res.stderr
    res = _recsys(
        "--source=criteo", f"--input={bad}", f"--output={tmp_path / 'o'}", "--max_error_fraction=0.05"
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "dead-lettered 1" in res.stdout


def test_cli_help_lists_the_flags(tmp_path):
    res = _recsys("--help", cwd=tmp_path)  # absl exits with status 1 after --help
    for flag in (
        "--source",
        "--input",
        "--output",
        "--schema",
        "--max_error_fraction",
        "--hash_threshold",
        "--runner",
        "--direct_num_workers",
    ):
        assert flag in res.stdout


def test_pipelines_package_imports_neither_tensorflow_nor_recsys():
    code = (
        "import sys, pipelines.pipeline, pipelines.dofns, pipelines.sources.movielens, "
        "pipelines.sources.synthetic, pipelines.sources.csv; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'recsys')))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "[]"
