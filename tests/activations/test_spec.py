"""One resolver: strings, dicts, Keras dicts and layers of one activation share a canonical string and
build the same layer; study lists split by the registry's grammar."""

from __future__ import annotations

import pytest

from recsys import activations
from recsys.activations import Activation, canonical, registry, split_list
from recsys.compat import keras


@pytest.mark.parametrize(
    ("string", "mapping", "want"),
    [
        ("smelu(beta=0.5)", {"name": "smooth_relu", "beta": 0.5}, "smelu(beta=0.5)"),
        ("SmeLU(beta=1)", {"name": "smelu"}, "smelu"),
        ("gsmelu(g_minus=0.01, alpha=0.5)", {"name": "gsmelu", "alpha": 0.5, "g_minus": 0.01},
         "gsmelu(alpha=0.5, g_minus=0.01)"),
        ("gelu_tanh", {"name": "gelu_tanh"}, "gelu_tanh"),
        ("gelu(approximate=True)", {"name": "gelu", "approximate": True}, "gelu(approximate=True)"),
        ("smelu_learnable(per_unit=True)", {"name": "learnable_smelu", "per_unit": True},
         "smelu_learnable(per_unit=True)"),
    ],
)
def test_string_dict_and_callable_specs_have_one_canonical_string(string, mapping, want):
    layer = activations.get(string)
    specs = [string, mapping, layer, keras.layers.serialize(layer), Activation.parse(string)]
    assert [canonical(s) for s in specs] == [want] * len(specs)
    # A string and a dict build the same layer (same class, same config apart from the layer name).
    from_dict = activations.get(mapping)
    assert type(from_dict) is type(layer)
    assert {**from_dict.get_config(), "name": ""} == {**layer.get_config(), "name": ""}
    name = want.split("(")[0]
    assert canonical(activations.lookup(name).cls) == name  # a registered class: its defaults


def test_specs_without_a_canonical_string_name_the_choices():
    with pytest.raises(ValueError, match="not a registered activation; valid choices: .*smelu"):
        canonical(lambda x: x)
    with pytest.raises(ValueError, match="needs a 'name' key.*valid choices: .*gsmelu"):
        canonical({"beta": 0.5})
    with pytest.raises(ValueError, match=r"unknown activation 'smeluu'; valid choices: .*rescu"):
        canonical({"name": "smeluu"})


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("relu,smelu(beta=0.5),gsmelu(alpha=1,beta=2)",
         ["relu", "smelu(beta=0.5)", "gsmelu(alpha=1,beta=2)"]),
        (" relu , gsmelu(alpha=1, beta=2) ,", ["relu", "gsmelu(alpha=1, beta=2)"]),
        ("smelu", ["smelu"]),
    ],
)
def test_split_list_cuts_on_top_level_commas_only(text, items):
    assert split_list(text) == items
    assert [canonical(s) for s in split_list(text)] == [canonical(s) for s in items]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("smelu(beta=0.5", r"unbalanced '\('"),
        ("relu),smelu(", r"unbalanced '\)'"),
        (" , ", r"no activations given.*valid choices: .*smelu"),
    ],
)
def test_split_list_refuses_malformed_lists(text, message):
    with pytest.raises(ValueError, match=message):
        registry.split_list(text)


def test_a_registered_class_builds_with_its_names_preset():
    assert activations.get(activations.lookup("gelu_tanh").cls).approximate is True
    assert activations.get(activations.lookup("gelu").cls).approximate is False
