"""Same seeds and op determinism -> bit-identical replicas; another data order -> different ones.

Runs in a subprocess because ``enable_op_determinism`` is process-wide.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from recsys import config as cfg
    from recsys.train import train
    root, out = sys.argv[1], sys.argv[2]
    base = [f"data.spec_dir={root}", "train.steps=30", "train.verbose=0", "data.batch_size=256",
            "train.checkpoint=false", "train.tensorboard=false", "export.enabled=false",
            "determinism.op_determinism=true", "model.activation=smelu"]
    preds = []
    for i, extra in enumerate([[], [], ["determinism.data_seed=5"]]):
        r = train(cfg.load("synthetic_small", base + extra), f"{out}/r{i}", predict_eval=True)
        preds.append(r.eval_predictions)
    print("RESULT " + json.dumps({"same": float(np.max(np.abs(preds[0] - preds[1]))),
                                  "other_order": float(np.max(np.abs(preds[0] - preds[2])))}))
""")


def test_replicas_are_bit_identical_with_op_determinism(tiny_data, tmp_path, repo_root):
    root, _ = tiny_data
    (tmp_path / "det.py").write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "det.py"), str(root), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo_root,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    got = json.loads(line[len("RESULT ") :])
    assert got["same"] == 0.0
    assert got["other_order"] > 1e-4
