"""Promotions of one models.config are serialized: a change another promotion made to the file while
this one's gate ran is kept, not overwritten (a lost update), and a label moved meanwhile is refused
with the servers left as they are. Real in-process servers on 127.0.0.1 (see test_promote.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.model_config import parse_server_config
from serving.tools.promote import Promotion, config_text
from tests.serving.test_promote import CONFIG, HEADER, _file_labels, _label_version, _promotion


@pytest.fixture
def served(base_path, serve, stubs, tmp_path):
    """Versions 1 and 2 (stable=1, canary=2), the models.config, and rows for the gate."""
    base_path(1)
    base_path(2)
    config = tmp_path / "models.config"
    config.write_text(HEADER + CONFIG % (base_path.path, 1, 2))
    server = serve(models=list(parse_server_config(config.read_text()).model_config_list.config))
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"cat": "abcz"[i % 4], "x1": i / 10, "x2": -i / 7}) + "\n"
                            for i in range(32)))
    return server, stubs(server), str(config), str(rows)


def _edit_during_the_gate(monkeypatch, config_file: str, label: str, version: int) -> None:
    """Another promote (of another label or model of the same file) writes while this gate runs."""
    gate = Promotion._gate

    def gate_then_another_write(self, target_version, candidate_version):
        values = gate(self, target_version, candidate_version)
        text = Path(config_file).read_text()
        config = parse_server_config(text)
        config.model_config_list.config[0].version_labels[label] = version
        Path(config_file).write_text(config_text(config, HEADER))
        return values

    monkeypatch.setattr(Promotion, "_gate", gate_then_another_write)


def test_a_change_made_while_the_gate_ran_is_kept(served, monkeypatch):
    server, stub, config_file, rows = served
    _edit_during_the_gate(monkeypatch, config_file, "beta", 1)
    record = _promotion(server, config_file, rows)
    assert record["decision"] == "promoted" and record["applied"]
    assert _file_labels(config_file) == {"stable": 2, "canary": 2, "beta": 1}  # beta was not lost
    assert _label_version(stub, "stable") == 2 and _label_version(stub, "beta") == 1


def test_the_target_moved_meanwhile_is_refused_and_nothing_moves(served, monkeypatch):
    server, stub, config_file, rows = served
    _edit_during_the_gate(monkeypatch, config_file, "stable", 2)
    record = _promotion(server, config_file, rows)
    assert record["decision"] == "error" and not record.get("applied")
    assert "moved to version 2" in record["reason"] and "run it again" in record["reason"]
    assert _label_version(stub, "stable") == 1  # the server was not touched
    assert not Path(config_file + ".history.json").exists()
