"""Every command as people run it: ``--help`` lists the generated flags; ``--config``/``--set``/flags resolve
in one order; a bad key exits 2 naming the valid keys. And no command fills its settings flag by flag."""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys

import pytest
import yaml

from recsys.settings import COMMANDS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(REPO, "recsys", "cli")
# Flags a command may still define by hand: what this invocation does, not a setting of the job.
RUN_ARGUMENTS = {"submit": {"model_dir", "overwrite", "allow_resume_change", "cluster_config", "dry_run"},
                 "study": {"overwrite"}}
MECHANISM = {"config", "set", "print_config"}


def _recsys(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recsys.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


def _flag_names(section: str) -> set[str]:
    return {f.metadata.get("flag", f.name) for f in dataclasses.fields(COMMANDS[section])} - {None}


@pytest.mark.parametrize("section", sorted(COMMANDS))
def test_help_lists_every_generated_flag(section):
    proc = _recsys(section, "--help")  # absl's --help exits 1 after printing
    assert "Try --helpfull" in proc.stdout, proc.stderr
    listed = {line.split(":")[0].strip().removeprefix("--").removeprefix("[no]")
              for line in proc.stdout.splitlines() if line.strip().startswith("--")}
    assert _flag_names(section) | MECHANISM <= listed, sorted(_flag_names(section) - listed)


def test_train_keeps_config_and_set():
    proc = _recsys("train", "--help")
    assert "--config" in proc.stdout and "--set:" in proc.stdout and "--model_dir" in proc.stdout


def test_serve_resolves_file_flags_and_set_in_order(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("train: {steps: 5}\nserve: {port: 9001, grpc_max_threads: 7, host: 0.0.0.0}\n")
    proc = _recsys("serve", f"--config={job}", "--port=9002", "--host=127.0.0.1",
                   "--set", "serve.grpc_max_threads=3", "--print_config")
    assert proc.returncode == 0, proc.stderr
    serve = yaml.safe_load(proc.stdout)["serve"]
    assert (serve["port"], serve["host"], serve["grpc_max_threads"]) == (9002, "127.0.0.1", 3)
    assert serve["model_name"] == "default"


def test_study_takes_the_experiment_and_its_settings_from_one_config(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("name: job\ntrain: {steps: 5}\nstudy: {replicas: 3, activations: relu}\n")
    proc = _recsys("study", f"--config={job}", "--set", "train.steps=8", "--set", "study.seed=2",
                   "--print_config")
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)
    assert resolved["name"] == "job" and resolved["train"]["steps"] == 8
    assert resolved["study"]["replicas"] == 3 and resolved["study"]["seed"] == 2
    assert resolved["study"]["activations"] == ["relu"]


@pytest.mark.parametrize("args, message", [
    (["monitor", "--set", "monitor.replicas=[a, b]"],
     "did you mean monitor.replica? valid keys: "),
    (["serve", "--set", "study.replicas=3"], "this command has no 'study' section"),
    (["preprocess", "--set", "preprocess.compression_level=0"], "preprocess.compression_level must be in"),
])
def test_bad_key_or_value_exits_2_with_the_reason(args, message):
    proc = _recsys(*args)
    assert proc.returncode == 2, proc.stderr
    assert f"recsys {args[0]}: " in proc.stderr and message in proc.stderr


def hand_mapped(source: str, section: str) -> list[str]:
    """What in a CLI module's source maps flags to settings by hand: a DEFINE of a setting or of an unlisted
    flag, a read of a generated flag (``FLAGS.port``, ``FLAGS["port"]``), a settings object built directly."""
    generated = _flag_names(section)
    allowed = RUN_ARGUMENTS.get(section, set()) | MECHANISM
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr.startswith("DEFINE") and node.args \
                and isinstance(node.args[0], ast.Constant) and node.args[0].value not in allowed:
            problems.append(f"hand-written flag --{node.args[0].value}")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "FLAGS" \
                and node.attr in generated:
            problems.append(f"FLAGS.{node.attr}")
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and node.slice.value in generated:
            problems.append(f"[{node.slice.value!r}]")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == COMMANDS[section].__name__:
            problems.append(f"{node.func.id}(...) built by hand")
    return problems


@pytest.mark.parametrize("section", sorted(COMMANDS))
def test_no_command_fills_its_settings_flag_by_flag(section):
    with open(os.path.join(CLI, f"{section}.py"), encoding="utf-8") as fh:
        source = fh.read()
    assert hand_mapped(source, section) == []
    assert f'Flags({COMMANDS[section].__name__}, "{section}"' in source


def test_the_hand_mapping_check_catches_the_old_shape():
    old = ('flags.DEFINE_integer("port", 8500, "gRPC port")\n'
           'flags.DEFINE_string("shadow_logdir", "", "x")\n'
           'def build():\n    return ServerOptions(port=FLAGS.port, host=FLAGS["host"].value)\n'
           'ServeSettings(port=1)\n')
    assert sorted(hand_mapped(old, "serve")) == sorted([
        "hand-written flag --port", "hand-written flag --shadow_logdir", "FLAGS.port", "['host']",
        "ServeSettings(...) built by hand"])
