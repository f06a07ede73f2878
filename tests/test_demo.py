"""`recsys demo` in a reduced mode: every stage runs for real, leaves its outputs; nothing keeps running."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from recsys.study.report import convergence_note, short_trained
from tests.noise import noise_lines


def _ratio(x: float) -> str:
    return f"{x:.2f}" if x >= 0.01 else f"{x:.1e}"


@pytest.mark.slow
def test_demo_end_to_end_reduced(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "recsys.cli", "demo", f"--output={out}", "--rows=3000", "--steps=20",
         "--eval_every=10", "--query_rows=128"],
        capture_output=True, text=True, timeout=900,
        # as from a user's shell: not the TF_USE_LEGACY_KERAS this test process's recsys.compat set
        env={k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    for n in range(1, 9):
        assert f"=== [{n}/8]" in text
    # Beam output with its feature spec; the study's table, plot and TensorBoard data.
    spec = json.loads((out / "data" / "feature_spec.json").read_text())
    assert spec["counts"]["read"] == 3000
    results = json.loads((out / "study" / "results.json").read_text())
    assert [v["variant"] for v in results["variants"]] == ["relu", "smelu"]
    assert all(v["pairs"] == 1 for v in results["variants"])
    assert (out / "study" / "frontier.png").stat().st_size > 5000
    # Topology source: replica 1 ran in process, replica 2 on the 2-worker local cluster, same seed and order;
    # both were exported as versions.
    for variant in ("relu", "smelu"):
        assert sorted(os.listdir(out / "models" / variant)) == ["1", "2", "3"]  # 3: the update (v2)
        assert not (out / "study" / "runs" / variant / "replica_0" / "workers").exists()
        assert (out / "study" / "runs" / variant / "replica_1" / "workers").is_dir()
    plans = [r["plan"] for v in results["variants"] for r in v["replica_results"]]
    assert [p["workers"] for p in plans] == [1, 2, 1, 2] and {p["seed"] for p in plans} == {0}
    assert results["statistics"]["selection"].startswith("per variant, the evaluation step with the highest")
    # gRPC query answered with probabilities; the monitor measured PD between served replicas.
    probs = [json.loads(line)["probability"] for line in text.splitlines()
             if line.startswith('{"probability"')]
    assert len(probs) == 5 and all(0.0 < p < 1.0 for p in probs)
    online = re.findall(r"online relative PD between served replicas of (\S+) \(128 rows\): ([0-9.e+-]+)%",
                        text)
    assert [name for name, _ in online] == ["relu", "smelu"]
    assert all(float(value) > 0 for _, value in online)
    # The update: v2 of each variant warm-started from replica 1 on window 1, served beside it.
    assert spec["windows"] and len(spec["windows"]) == 2
    v2 = json.loads((out / "update" / "relu" / "fingerprint.json").read_text())
    v1 = json.loads((out / "study" / "runs" / "relu" / "replica_0" / "fingerprint.json").read_text())
    assert v2["parent"]["weights_sha256"] == v1["weights_sha256"]
    assert "| variant | replica PD of v1 at its last step [95% CI] | update churn v1->v2" in text
    served = re.findall(r"online relative PD between served versions of (\S+) v1->v2 \(128 rows\): "
                        r"([0-9.e+-]+)%", text)
    assert [name for name, _ in served] == ["relu", "smelu"] and all(float(v) > 0 for _, v in served)
    # Quiet by default (recsys/quiet.py): no TensorFlow / CUDA / oneDNN / Beam start-up chatter.
    assert noise_lines(proc.stdout + proc.stderr) == [], noise_lines(proc.stdout + proc.stderr)[:10]
    assert noise_lines((out / "server.log").read_text()) == []
    assert f"tensorboard --logdir {out / 'study' / 'tensorboard'} " in text
    assert "  then open http://127.0.0.1:6006/#custom_scalars&_smoothingWeight=0 (smoothing 0; " in text
    assert "| `smelu` | 2 |" in text
    assert (out / "study" / "tensorboard" / "monitor" / "relu").is_dir()  # the monitor's run, in the study's
    # The line before last says what was found, from which source, with the CIs, as results.json has it.
    s = results["variants"][1]
    ratio, delta = ({k: _ratio(v) for k, v in s["pd_ratio"].items()}, s["auc_delta"])
    *_, finding, pointer = text.strip().splitlines()
    assert finding == (
        "Finding: With replicas differing by topology (1 vs 2 workers): "
        f"smelu had {ratio['estimate']}× relu's relative PD "
        f"[95% CI {ratio['ci_lower']}–{ratio['ci_upper']} over eval examples only] "
        f"at AUC {delta['estimate']:+.4f} "
        f"[{delta['ci_lower']:+.4f}, {delta['ci_upper']:+.4f}] (K=2, step {s['selected_step']}): "
        + {"fewer": "fewer disagreements (significant)", "more": "more disagreements (significant)",
           "within": "within noise"}[s["verdict"].split()[0]]
        + ("; weak at K=2: the interval covers example noise only, not how much another pair of replicas "
           "would differ (--replicas 4 or more to call it)" if "significant" in s["verdict"] else "")
        + convergence_note(results))
    # A fixed length (the demo's time): the finding says which variants were still improving at the end.
    last = max(p["step"] for p in results["variants"][0]["pd_over_time"])
    short = [v["variant"] for v in results["variants"] if v["selected_step"] == last]
    assert short_trained(results) == short
    assert ("short-trained" in finding) == bool(short)
    # The last line: the decomposition by source on the demo's experiment, a command that parses as is.
    prefix = "Which source dominates (one study per source): recsys study "
    assert pointer.startswith(prefix), pointer
    args = shlex.split(pointer[len(prefix):])
    assert args == [f"--config={out / 'study' / 'config.yaml'}", "--by_source",
                    "--sources=seed,order,noise,topology", "--activations=relu,smelu", "--replicas=2",
                    "--topology_workers=1,2", "--validation_fraction=0.1", "--patience=0",
                    f"--output={out / 'by_source'}"]
    resolved = subprocess.run([sys.executable, "-m", "recsys.cli", "study", *args, "--print_config"],
                              capture_output=True, text=True, timeout=300)
    assert resolved.returncode == 0, resolved.stderr[-2000:]
    config = yaml.safe_load(resolved.stdout)
    assert config["study"]["by_source"] is True and config["data"]["spec_dir"] == str(out / "data")
    assert config["train"]["steps"] == 20 and config["train"]["learning_rate"] == 0.01
    # The server the demo started is gone.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(out / "models.config") not in ps
