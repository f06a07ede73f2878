"""``recsys X --help`` through the real command: exit 0 (absl exits 1, a failure to scripts), flags listed."""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import pytest
from absl import flags

from recsys.cli import SUBCOMMANDS
from recsys.cli.flagging import Flags
from recsys.settings import COMMANDS

REPO = pathlib.Path(__file__).resolve().parents[2]


def recsys(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "recsys.cli", *args], capture_output=True, text=True,
                          env=env, cwd=str(REPO), timeout=120)


def expected_flags(name: str) -> set[str]:
    """The flags a subcommand defines: its settings dataclass's, and those its module declares by hand."""
    out: set[str] = set()
    if name in COMMANDS:
        out |= set(Flags(COMMANDS[name], name, flags.FlagValues()).names.values()) | {"config", "set"}
    module = REPO / (SUBCOMMANDS[name][0].replace(".", "/") + ".py")
    for node in ast.walk(ast.parse(module.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr.startswith("DEFINE_") and node.args
                and isinstance(node.args[0], ast.Constant)):
            out.add(node.args[0].value)
    return out


def listed(help_text: str) -> set[str]:
    """Flag names in absl's help text (``--name:`` or ``--[no]name:``)."""
    names = set()
    for line in help_text.splitlines():
        word = line.strip().split(":", 1)[0]
        if word.startswith("--"):
            names.add(word.removeprefix("--").removeprefix("[no]"))
    return names


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_help_exits_0_and_lists_the_subcommands_flags(name):
    proc = recsys(name, "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    want = expected_flags(name)
    assert len(want) >= 2  # the parse found the flags, so the next line can fail
    assert want - listed(proc.stdout) == set()


@pytest.mark.parametrize("flag", ["-h", "--helpshort", "--helpfull"])
def test_every_help_flag_exits_0(flag):
    proc = recsys("plan", flag)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {"workers", "memory", "num_ids"} <= listed(proc.stdout)


def test_bare_help_lists_the_subcommands_and_exits_0():
    for args in (["--help"], ["-h"], ["help"]):
        proc = recsys(*args)
        assert proc.returncode == 0, proc.stderr
        assert all(name in proc.stdout for name in SUBCOMMANDS)
    assert recsys().returncode == 2  # no subcommand is a usage error


def test_a_bad_flag_still_exits_2():
    proc = recsys("query", "--no_such_flag")
    assert proc.returncode == 2 and "no_such_flag" in proc.stderr


# What a command needs before it works: its settings. `--print_config` (and a config error) must not
# wait for TensorFlow to load (3-4 s of CPU), which only the work itself needs.
_PROBE = """
import json, sys
from recsys.cli import main
sys.argv = ["recsys", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(json.dumps({"tensorflow": "tensorflow" in sys.modules}))
"""


@pytest.mark.parametrize("command", ["train", "submit", "serve", "monitor", "query", "promote", "rows",
                                     "reproduce", "plan", "compare"])
def test_print_config_does_not_load_tensorflow(command):
    args = [command, "--print_config"] + (["--config", "synthetic_small"] if command in ("train", "submit",
                                                                                      "plan") else [])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, env=env,
                          cwd=str(REPO), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == '{"tensorflow": false}', proc.stdout[-2000:]
