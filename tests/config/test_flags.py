"""Flags generated from the settings dataclasses, and how a value is resolved: defaults <- the config
file's section <- flags given on the command line <- ``--set section.key=value``."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from absl import flags

from recsys.cli.flagging import Flags
from recsys.config import loading
from recsys.settings import COMMANDS
from recsys.settings.monitor import MonitorSettings
from recsys.settings.preprocess import PreprocessSettings
from recsys.settings.serve import ServeSettings
from recsys.settings.study import StudySettings


def _flags(cls, section, *argv):
    fv = flags.FlagValues()
    generated = Flags(cls, section, fv)
    fv(["recsys", *argv])
    return generated


@pytest.mark.parametrize("section", sorted(COMMANDS))
def test_every_field_has_a_flag_of_its_type_and_default(section):
    cls = COMMANDS[section]
    generated = _flags(cls, section)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("flag", f.name) is None:
            assert f.name not in generated.names
            continue
        flag = generated.fv[generated.names[f.name]]
        assert f"{f.metadata['help']}  [{section}.{f.name}]" in flag.help
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if "parse" in f.metadata:
            assert flag.value == ",".join(map(str, default))
        elif isinstance(default, tuple):
            assert flag.value == [str(v) for v in default]
        else:
            assert flag.value == default, f.name
        if typing.get_origin(hints[f.name]) is typing.Literal:
            assert sorted(flag.parser.enum_values) == sorted(typing.get_args(hints[f.name]))
    assert {"config", "set", "print_config"} <= set(generated.fv)


def test_the_existing_flag_names_stay():
    serve = _flags(ServeSettings, "serve")
    assert {"port", "rest_api_port", "model_name", "model_base_path", "model_config_file", "enable_batching",
            "batching_parameters_file", "file_system_poll_wait_seconds", "max_num_load_retries",
            "load_retry_interval_micros", "grpc_channel_arguments", "ssl_cert_file"} <= set(serve.fv)
    monitor = _flags(MonitorSettings, "monitor")
    assert monitor.names["format"] == "format" and isinstance(monitor.fv["replica"], flags.MultiFlag)
    assert {"rows", "check", "max_relative_pd", "metrics_port"} <= set(monitor.fv)
    assert {"source", "input", "output", "rows", "cardinalities", "runner"} <= set(
        _flags(PreprocessSettings, "preprocess").fv)


def test_precedence_defaults_file_flags_set(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("train: {steps: 5}\n"
                    "serve: {port: 9001, host: 0.0.0.0, grpc_max_threads: 7, enable_batching: true}\n")
    s = _flags(ServeSettings, "serve", f"--config={path}", "--port=9002", "--host=127.0.0.1",
               "--set", "serve.port=9003", "--noenable_batching").resolve()
    assert s.port == 9003  # --set beats the flag, which beats the file
    assert s.host == "127.0.0.1"  # a flag given explicitly wins although it equals the default
    assert s.enable_batching is False
    assert s.grpc_max_threads == 7  # only the file sets it
    assert s.max_num_load_retries == 5  # nobody sets it: the dataclass default
    assert s == dataclasses.replace(ServeSettings(), port=9003, host="127.0.0.1", grpc_max_threads=7)


def test_one_config_gives_the_experiment_and_the_command_settings(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("name: job\ntrain: {steps: 5}\n"
                    "study: {replicas: 3, activations: [relu, 'smelu(beta=1.0)']}\n")
    study = _flags(StudySettings, "study", f"--config={path}", "--set", "train.steps=9", "--seed=4",
                   "--set", "study.sources=noise", "--topology_workers=1,3")
    s = study.resolve()
    assert (s.replicas, s.seed, s.sources, s.topology_workers) == (3, 4, ("noise",), (1, 3))
    assert s.activations == ("relu", "smelu")  # canonical: smelu(beta=1.0) is smelu
    exp = study.experiment()
    assert exp.name == "job" and exp.train.steps == 9
    saved = loading.save(exp, tmp_path / "out", {"study": s})
    assert loading.load_section(StudySettings, "study", saved) == s and loading.load(saved) == exp


def test_list_multi_and_text_flags():
    m = _flags(MonitorSettings, "monitor", "--replica=a:1/m", "--replica=a:1/n", "--max_relative_pd=0.05")
    assert m.resolve().replica == ("a:1/m", "a:1/n") and m.resolve().max_relative_pd == 0.05
    p = _flags(PreprocessSettings, "preprocess", "--cardinalities=3,4", "--input=a.tsv,b.tsv").resolve()
    assert p.cardinalities == (3, 4) and p.input == ("a.tsv", "b.tsv")
    with pytest.raises(loading.ConfigError, match="--cardinalities: expected comma-separated ints, got '3,x"):
        _flags(PreprocessSettings, "preprocess", "--cardinalities=3,x").resolve()
    s = _flags(StudySettings, "study", "--activations=relu,gsmelu(alpha=1, beta=2)").resolve()
    assert s.activations[0] == "relu" and s.activations[1].startswith("gsmelu(") and len(s.activations) == 2


@pytest.mark.parametrize("argv, message", [
    (["--set", "serve.prot=1"], r"unknown config key 'serve.prot'.*did you mean serve\.port\? valid keys: "
                                r"serve\.port, "),
    (["--set", "study.replicas=3"], r"this command has no 'study' section \(its sections: serve\.\*\)"),
    (["--set", "serve.port=many"], r"serve\.port: expected int, got 'many'"),
    (["--port=70000"], r"serve\.port must be in \[0, 65535\], got 70000"),
    (["--shadow=ranker"], r"serve\.shadow must be PRIMARY=TARGET"),
])
def test_bad_input_names_the_key(argv, message):
    with pytest.raises(loading.ConfigError, match=message):
        _flags(ServeSettings, "serve", *argv).resolve()


def test_a_bad_key_in_the_section_lists_the_valid_keys(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("monitor: {replicas: [a, b]}\n")
    with pytest.raises(loading.ConfigError, match=r"\['monitor.replicas'\]; did you mean monitor\.replica\? "
                       r"valid keys: .*monitor\.replica, monitor\.rows, "):
        _flags(MonitorSettings, "monitor", f"--config={path}").resolve()


def test_source_choices_are_the_pipelines_sources():
    from pipelines.sources import SOURCES

    assert typing.get_args(typing.get_type_hints(PreprocessSettings)["source"]) == SOURCES


def test_sections_are_the_commands():
    assert tuple(COMMANDS) == loading.SECTIONS


def test_a_typo_gets_a_suggestion_and_a_far_miss_does_not():
    with pytest.raises(loading.ConfigError, match=r"'trian\.steps'.*; did you mean train\.steps\? valid"):
        loading.load("synthetic_small", ["trian.steps=5"])
    with pytest.raises(loading.ConfigError, match=r"'zzz'.*; valid keys") as err:
        loading.load("synthetic_small", ["zzz=5"])
    assert "did you mean" not in str(err.value)
