"""``recsys plan`` and ``recsys submit --dry_run`` as commands: table, JSON, exit codes, stderr."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from pipelines.feature_spec import Feature, FeatureSpec, Label


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory) -> str:
    """A spec with 2 numeric and 3 hashed features: C3 has 20M ids (1.19 GiB of weights at dim 16)."""
    feats = [Feature(name=f"I{i}", kind="numeric", dtype="float32") for i in (1, 2)]
    feats += [Feature(name=n, kind="categorical", dtype="string", encoding="hash", hash_buckets=b)
              for n, b in (("C1", 1000), ("C2", 5000), ("C3", 20_000_000))]  # fmt: skip
    d = str(tmp_path_factory.mktemp("plan_spec"))
    FeatureSpec(dataset="t", label=Label(), features=tuple(feats)).save(d)
    return d


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recsys.cli", *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def plan(spec_dir: str, *args: str) -> subprocess.CompletedProcess:
    return run("plan", "--config", "criteo_dcn", f"--set=data.spec_dir={spec_dir}", *args)


def test_json_numbers_and_no_tensorflow(spec_dir):
    proc = plan(spec_dir, "--json", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    (table,) = out["tables"]
    assert (table["rows"], table["dim"], table["gradient"]) == (20_006_000, 16, "sparse")
    assert table["weight_bytes"] == 20_006_000 * 64 and table["slot_bytes"] == 2 * table["weight_bytes"]
    assert out["allreduce_per_step"]["sparse_bytes"] == 2 * 2048 * 3 * (64 + 8)
    assert out["per_worker"]["fits"] is True and out["refusal"] == ""
    code = "import sys, recsys.cli.plan, recsys.planning.render; print('tensorflow' in sys.modules)"
    imports = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert imports.stdout.strip() == "False", imports.stderr  # instant: the plan never loads TF


def test_refuses_when_memory_is_exceeded_naming_the_table(spec_dir):
    proc = plan(spec_dir, "--memory", "8Gi")
    assert proc.returncode == 1
    assert "table_d16" in proc.stderr and "C3" in proc.stderr and "refused" in proc.stderr
    assert "DOES NOT FIT" in proc.stdout and "table_d16" in proc.stdout
    warn = plan(spec_dir, "--memory", "8Gi", "--nostrict")
    assert warn.returncode == 0 and "warning:" in warn.stderr
    fits = plan(spec_dir, "--memory", "32Gi")
    assert fits.returncode == 0 and "fits" in fits.stdout


def test_what_if_hashing_shrinks_the_table(spec_dir):
    proc = plan(spec_dir, "--json", "--max_ids", "100000", "--num_ids", "C1=7")
    (table,) = json.loads(proc.stdout)["tables"]
    assert table["rows"] == 7 + 5000 + 100_000 and table["gradient"] == "dense"
    bad = plan(spec_dir, "--num_ids", "Z=3")
    assert bad.returncode != 0 and "unknown categorical" in bad.stderr


def test_submit_dry_run_prints_the_plan_on_stderr_and_yaml_on_stdout(spec_dir):
    proc = run("submit", "--config", "criteo_dcn", f"--set=data.spec_dir={spec_dir}", "--cluster",
               "kubernetes", "--dry_run", "--image", "img", "--memory", "4Gi", "--workers", "3",
               "--model_dir", "gs://bucket/runs/x")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "[plan] plan for criteo_dcn: 3 worker(s)" in proc.stderr and "DOES NOT FIT" in proc.stderr
    assert all(doc for doc in yaml.safe_load_all(proc.stdout))
    local = run("submit", "--config", "criteo_dcn", f"--set=data.spec_dir={spec_dir}", "--dry_run",
                "--model_dir", "/nonexistent/never-created")  # fmt: skip
    assert local.returncode == 0 and "[plan] plan for criteo_dcn: 2 worker(s)" in local.stderr


def test_submit_dry_run_without_a_local_spec_skips_the_plan():
    proc = run("submit", "--config", "criteo_dcn", "--set=data.spec_dir=/mnt/recsys/data/criteo", "--cluster",
               "kubernetes", "--dry_run", "--image", "img", "--model_dir", "gs://bucket/runs/x")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "[plan] skipped: no feature_spec.json" in proc.stderr and "kind:" in proc.stdout
