"""Ensemble variants beside activations: "relu×2" / "relu*2" parse to model.ensemble, canonical names,
clear errors; plain activation specs keep working unchanged."""

from __future__ import annotations

import pytest

from recsys.config.schema import Experiment
from recsys.settings.study import activations
from recsys.study import dashboards
from recsys.study.variants import canonical_variant, parse_variant, plan_replica, replica_config, split_specs


def test_variant_names_parse_to_activation_and_ensemble_size():
    assert parse_variant("relu×2") == ("relu", 2)
    assert parse_variant(" smelu(beta=0.50) * 4 ") == ("smelu(beta=0.5)", 4)
    assert parse_variant("smelu(beta=1.0)") == ("smelu", 1)  # beta=1 is the default
    assert parse_variant("gsmelu(alpha=1, beta=2)") == ("gsmelu(beta=2.0)", 1)
    assert canonical_variant("relu*2") == "relu×2" and canonical_variant("relu×1") == "relu"
    assert split_specs("relu,relu*2,smelu(beta=0.5)×2,SiLU") == [
        "relu", "relu×2", "smelu(beta=0.5)×2", "swish"]
    assert activations("relu, relu×4") == ("relu", "relu×4")


@pytest.mark.parametrize("text", ["relu×0", "relu*-1", "relu×two", "×2", "relu*"])
def test_bad_ensemble_sizes_are_refused(text):
    with pytest.raises(ValueError, match=r"ensemble size .* integer >= 1"):
        parse_variant(text)


def test_the_same_variant_twice_is_refused():
    with pytest.raises(ValueError, match=r"listed twice: relu\*2 = relu×2"):
        split_specs("relu*2,relu,relu×2")
    with pytest.raises(ValueError, match=r"listed twice: relu = relu×1"):
        split_specs("relu,relu×1")


def test_replica_config_sets_the_ensemble_and_plain_specs_stay_single():
    base = Experiment()
    plan = plan_replica("smelu(beta=0.5)×2", 1, ("seed",), 0, 1e-7)
    cfg = replica_config(base, "smelu(beta=0.5)×2", plan)
    assert (cfg.model.activation, cfg.model.ensemble, cfg.determinism.seed) == ("smelu(beta=0.5)", 2, 1)
    plain = replica_config(base, "gelu", plan_replica("gelu", 0, ("seed",), 0, 1e-7))
    assert (plain.model.activation, plain.model.ensemble) == ("gelu", 1)
    assert cfg.name.endswith("/smelu(beta=0.5)×2/replica_1")


def test_hparams_carry_the_ensemble_size():
    plan = {"index": 0, "seed": 0, "data_seed": 0, "noise_scale": 0.0}
    hp = dashboards.replica_hparams("smelu(beta=0.5)×2", plan, ("seed",))
    assert (hp["activation"], hp["ensemble"], hp["param.beta"]) == ("smelu", 2, 0.5)
    assert dashboards.replica_hparams("relu", plan, ())["ensemble"] == 1
