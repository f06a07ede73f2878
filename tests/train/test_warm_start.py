"""Warm start on real training (one process): a child starts from a parent run's or export's weights,
is the same bit for bit for the same parent and config, resumes exactly, records its parent, and a
missing, corrupt or mismatched parent is refused before anything is written."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from recsys.train import fingerprint
from recsys.train.parent import ParentError
from recsys.train.trainer import train
from tests.train.conftest import exp


def test_warm_start_takes_the_parents_weights_from_a_run_or_an_export(parent, tmp_path):
    for kind in ("run", "export"):
        config = exp(parent["data"], f"train.warm_start_from={parent[kind]}")
        at_zero = train(config, str(tmp_path / kind), stop_at_step=0)
        assert fingerprint.weights_digest(at_zero.model.get_weights()) == parent["digest"], kind
        child = train(config, str(tmp_path / kind))
        assert child.fingerprint["weights_sha256"] != parent["digest"]  # it trained on
        lineage = child.fingerprint["parent"]
        assert lineage["weights_sha256"] == parent["digest"] and lineage["kind"] == kind
        assert lineage["path"] == parent[kind] and lineage["export_path"] == parent["export"]
        assert lineage["config_sha256"] == parent["fp"]["config_sha256"] and lineage["final_step"] == 12
        assert child.fingerprint["teacher"] is None
        with open(os.path.join(child.export_path, "assets.extra", "fingerprint.json")) as fh:
            exported = json.load(fh)
        assert exported["parent"] == lineage


@pytest.fixture(scope="module")
def child(parent, tmp_path_factory):
    return train(exp(parent["data"], f"train.warm_start_from={parent['export']}"),
                 str(tmp_path_factory.mktemp("child")), predict_eval=True)


def test_same_parent_and_config_give_the_same_child(parent, child, tmp_path):
    again = train(exp(parent["data"], f"train.warm_start_from={parent['export']}"), str(tmp_path))
    assert again.fingerprint["weights_sha256"] == child.fingerprint["weights_sha256"]
    cold = train(exp(parent["data"]), str(tmp_path / "cold"))
    assert cold.fingerprint["weights_sha256"] != child.fingerprint["weights_sha256"]
    assert cold.fingerprint["parent"] is None


def test_a_stopped_child_resumes_exactly_without_reading_its_parent(parent, child, tmp_path):
    copy = str(tmp_path / "parent-export")
    shutil.copytree(parent["export"], copy)
    config = exp(parent["data"], f"train.warm_start_from={copy}")
    stopped = train(config, str(tmp_path / "m"), stop_at_step=7)  # between the backups at 6 and 8
    assert stopped.fingerprint is None
    shutil.rmtree(copy)  # the backup wins on resume: the parent is not read again
    resumed = train(config, str(tmp_path / "m"))
    assert resumed.fingerprint["weights_sha256"] == child.fingerprint["weights_sha256"]
    assert [r["step"] for r in resumed.fingerprint["resumes"]] == [7]
    assert resumed.fingerprint["parent"]["weights_sha256"] == parent["digest"]  # from the run record
    assert resumed.fingerprint["parent"]["path"] == copy


def test_optimizer_slots_come_from_a_run_only(parent, child, tmp_path):
    with_slots = train(exp(parent["data"], f"train.warm_start_from={parent['run']}",
                           "train.warm_start_optimizer=true"), str(tmp_path / "slots"))
    assert with_slots.fingerprint["parent"]["weights_sha256"] == parent["digest"]
    # The same weights with the parent's Adam moments train to another model than with fresh ones.
    assert with_slots.fingerprint["weights_sha256"] != child.fingerprint["weights_sha256"]
    with pytest.raises(ParentError, match="is an export, which carries no optimizer slots"):
        train(exp(parent["data"], f"train.warm_start_from={parent['export']}",
                  "train.warm_start_optimizer=true"), str(tmp_path / "refused"))
    with pytest.raises(ParentError, match="the parent used optimizer 'adam', this run 'adagrad'"):
        train(exp(parent["data"], f"train.warm_start_from={parent['run']}", "train.optimizer=adagrad",
                  "train.warm_start_optimizer=true"), str(tmp_path / "refused"))
    assert not (tmp_path / "refused").exists()


def _refused(config, model_dir, match: str) -> None:
    with pytest.raises(ParentError, match=match):
        train(config, str(model_dir))
    assert not model_dir.exists(), "a refused start wrote into its model_dir"


def test_mismatched_missing_or_corrupt_parents_are_refused_naming_why(parent, tmp_path):
    data, run = parent["data"], parent["run"]
    _refused(exp(data, f"train.warm_start_from={run}", "model.embedding_dim=4"), tmp_path / "a",
             r"another architecture: variable \d+ \(.*\) has shape \[\d+, 8\] in the parent, "
             r"\[\d+, 4\] in the child \(model config: embedding_dim: 8 in the parent, 4 in the child\)")
    _refused(exp(data, f"train.warm_start_from={run}", "model.top_mlp=[16,4]"), tmp_path / "b",
             "another architecture")
    _refused(exp(str(parent["root"] / "other"), f"train.warm_start_from={run}"), tmp_path / "c",
             "was trained on another feature spec")
    _refused(exp(data, f"train.warm_start_from={tmp_path / 'nowhere'}"), tmp_path / "d", "no such directory")
    _refused(exp(data, f"train.warm_start_from={data}"), tmp_path / "e", "neither a finished run")
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    state = json.loads((broken / "train_state.json").read_text())
    (broken / "train_state.json").write_text(json.dumps({**state, "finished": False}))  # resumed on
    _refused(exp(data, f"train.warm_start_from={broken}"), tmp_path / "h", "the run is not finished")
    (broken / "train_state.json").write_text(json.dumps(state))
    fp = json.loads((broken / "fingerprint.json").read_text())
    (broken / "fingerprint.json").write_text(json.dumps({**fp, "weights_sha256": "0" * 64}))
    _refused(exp(data, f"train.warm_start_from={broken}"), tmp_path / "f", "a corrupt or replaced parent")
    (broken / "fingerprint.json").write_text(json.dumps(fp))
    for f in (broken / "backup").iterdir():
        if ".data-" in f.name:
            f.write_bytes(f.read_bytes()[:50])
    _refused(exp(data, f"train.warm_start_from={broken}"), tmp_path / "g", "its weights cannot be restored")


def test_an_export_of_an_earlier_version_still_warm_starts_and_compares(parent, child, tmp_path):
    """Exports written before 2026-12-04 tracked the Keras model itself (same ``model/variables/<i>`` keys,
    plus Keras's layer serialization): they still give the same child, digest and predictions."""
    import numpy as np

    from pipelines import feature_spec
    from recsys.compat import tf
    from recsys.export.saved_model import read_weights
    from recsys.export.signatures import make_signatures
    from recsys.models.ranking import RankingModel
    from recsys.repro.compare import export_weights_digest

    old = tmp_path / "old-export"
    shutil.copytree(parent["export"], old)  # assets and assets.extra (fingerprint, config) as they were
    shutil.rmtree(old / "variables")
    os.remove(old / "saved_model.pb")
    spec = feature_spec.load(parent["data"])
    model = RankingModel(spec, exp(parent["data"]).model)
    model.build_from_spec()
    model.set_weights(read_weights(parent["export"]))
    module = tf.Module()
    module.model = model  # the earlier layout
    tf.saved_model.save(module, str(old), signatures=make_signatures(model, spec))
    assert hasattr(tf.saved_model.load(str(old)).model, "keras_api")  # the earlier, Keras layout
    assert not hasattr(tf.saved_model.load(parent["export"]).model, "keras_api")  # today's
    assert export_weights_digest(str(old)) == parent["digest"]
    for got, want in zip(read_weights(str(old)), read_weights(parent["export"]), strict=True):
        np.testing.assert_array_equal(got, want)
    again = train(exp(parent["data"], f"train.warm_start_from={old}"), str(tmp_path / "m"))
    assert again.fingerprint["weights_sha256"] == child.fingerprint["weights_sha256"]
