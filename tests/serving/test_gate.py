"""The PD gate: one Thresholds type; compare, monitor and promote list the same threshold flags and defaults;
--max_churn is a deprecated alias that keeps its old meaning in each command."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from serving.gate import Thresholds, gate_flags

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_crossed_names_each_exceeded_limit():
    t = Thresholds(max_relative_pd=0.1, max_flip_rate=0.2, max_topk_churn=0.5)
    assert t.limits() == {"relative_pd": 0.1, "flip_rate": 0.2, "topk_churn": 0.5}
    values = {"relative_pd": 0.15, "absolute_pd": 9.0, "flip_rate": 0.2, "topk_churn": 0.75}
    assert t.crossed(values) == ["relative_pd=0.15 > 0.1", "topk_churn=0.75 > 0.5"]  # 0.2 is not > 0.2
    assert Thresholds().crossed(values) == []
    assert Thresholds().flip_threshold == 0.5


def _help(command: str) -> dict[str, str | None]:
    """Gate flag -> its default in ``recsys <command> --help`` (None when it has no default)."""
    proc = subprocess.run([sys.executable, "-m", "recsys.cli", command, "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0 and "--max_relative_pd" in proc.stdout, proc.stderr
    blocks = re.split(r"\n  --(?:\[no\])?", proc.stdout)
    out: dict[str, str | None] = {}
    for block in blocks:
        name = block.split(":", 1)[0]
        if name in {n for n, _, _ in gate_flags()} or name == "max_churn":
            default = re.search(r"\(default: '([^']*)'\)", block)
            out[name] = default.group(1) if default else None
    return out


def test_compare_monitor_and_promote_list_the_same_threshold_flags_and_defaults():
    want = {name: None if default is None else f"{default:g}" for name, default, _ in gate_flags()}
    assert set(want) == {"max_relative_pd", "max_absolute_pd", "max_share_above", "max_flip_rate",
                         "max_topk_churn", "flip_threshold"}
    for command in ("compare", "monitor", "promote"):
        assert _help(command) == {**want, "max_churn": None}, command


@pytest.mark.parametrize("command, means, args", [
    ("compare", "max_flip_rate", ["--data=x"]),
    ("promote", "max_topk_churn", ["--model=m", "--model_config_file=f"])])
def test_deprecated_max_churn_maps_to_what_it_meant(command, means, args):
    code = (f"import sys; from absl import flags; import recsys.cli.{command} as cmd; "
            "from recsys.cli import gateflags; from recsys.settings.gate import gate_values; "
            f"flags.FLAGS(['{command}', *sys.argv[1:]]); s = cmd.SETTINGS.load('{command}'); "
            f"values = gateflags.with_deprecated_churn(gate_values(s), s.max_churn, '{means}', '{command}'); "
            "print(gateflags.make(values).as_dict())")
    proc = subprocess.run([sys.executable, "-c", code, "--max_churn=0.3", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr
    assert f"'{means}': 0.3" in proc.stdout
    (note,) = proc.stderr.strip().splitlines()
    assert "--max_churn is deprecated" in note and f"--{means}" in note


def test_monitor_maps_max_churn_to_topk_churn(capsys):
    from recsys.cli.monitor import monitor_config
    from recsys.settings.monitor import MonitorSettings

    config = monitor_config(MonitorSettings(replica=("a:1/m", "a:1/n"), rows="r", max_churn=0.25,
                                            max_relative_pd=-1.0))
    assert config.thresholds == Thresholds(max_topk_churn=0.25)  # a negative limit is not checked
    (note,) = capsys.readouterr().err.strip().splitlines()
    assert "--max_churn is deprecated" in note and "--max_topk_churn" in note
    with pytest.raises(SystemExit):
        monitor_config(MonitorSettings(max_churn=0.25, max_topk_churn=0.5))
