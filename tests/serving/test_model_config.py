"""models.config: written with text_format, parsed back to the same models; bad configs refused."""

from __future__ import annotations

import os
import stat

import pytest

from serving.model_config import (
    format_config,
    leading_comments,
    parse_config,
    parse_server_config,
    read_config,
    single_model_config,
    write_config,
)

HEADER = "# written by the test\n# kept on rewrite\n"


def _models() -> list:
    stable = single_model_config("ranker", "/models/ranker", all_versions=True)
    stable.version_labels["stable"] = 3
    return [stable, single_model_config('odd "name"', "/models/odd dir\\x")]


def test_write_then_parse_gives_the_same_models(tmp_path):
    path = str(tmp_path / "models.config")
    assert write_config(path, _models(), HEADER) == path
    assert read_config(path) == _models()
    text = (tmp_path / "models.config").read_text(encoding="utf-8")
    assert leading_comments(text) == HEADER
    assert parse_config(text)[0].model_version_policy.WhichOneof("policy_choice") == "all"
    assert parse_config(text)[1].name == 'odd "name"'  # quoted by text_format, not by hand
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_rewrite_keeps_the_mode_and_accepts_a_whole_server_config(tmp_path):
    path = str(tmp_path / "models.config")
    write_config(path, _models())
    os.chmod(path, 0o640)
    config = parse_server_config(format_config(_models()))
    config.model_config_list.config[0].version_labels["stable"] = 4
    write_config(path, config)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert read_config(path)[0].version_labels["stable"] == 4
    assert os.listdir(tmp_path) == ["models.config"]  # no temp file left behind


@pytest.mark.parametrize(
    "models, message",
    [
        ([single_model_config("a", "/x"), single_model_config("a", "/y")], "unique"),
        ([single_model_config("", "/x")], "non-empty"),
    ],
)
def test_a_config_the_server_would_refuse_is_never_written(tmp_path, models, message):
    path = tmp_path / "models.config"
    with pytest.raises(ValueError, match=message):
        write_config(str(path), models)
    assert not path.exists()


def test_parse_refuses_other_platforms_and_config_kinds():
    with pytest.raises(ValueError, match="unsupported platform 'pytorch'"):
        parse_config('model_config_list { config { name: "a" base_path: "/x" model_platform: "pytorch" } }')
    with pytest.raises(ValueError, match="only model_config_list"):
        parse_config('custom_model_config { }')
