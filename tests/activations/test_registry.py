"""Registry resolution, error messages, get_config round trips and Keras (de)serialization."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from recsys import activations
from recsys.activations import registry
from recsys.compat import keras, tf

BUILT_IN = {
    "relu", "leaky_relu", "elu", "selu", "softplus", "swish", "gelu", "gelu_tanh", "mish",
    "tanhexp", "smelu", "gsmelu", "smelu_learnable", "rescu",
}


def test_built_ins_are_registered_with_aliases():
    assert BUILT_IN <= set(activations.names())
    assert type(activations.get("silu")) is type(activations.get("swish"))
    assert activations.get("gelu_tanh").approximate is True
    assert activations.get("gelu").approximate is False
    assert activations.get("SmeLU").beta == 1.0  # names are case-insensitive


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("smelu(beta=0.5)", {"beta": 0.5}),
        (" smelu( beta = 2 ) ", {"beta": 2.0}),
        ({"name": "smelu", "beta": 0.5}, {"beta": 0.5}),
        ("gsmelu(alpha=0.5, g_minus=0.01, learnable=True)",
         {"alpha": 0.5, "beta": 1.0, "g_minus": 0.01, "g_plus": 1.0, "learnable": True}),
        ("smelu_learnable(per_unit=True)", {"beta": 1.0, "per_unit": True}),
        ("leaky_relu(alpha=0.2)", {"alpha": 0.2}),
    ],
)
def test_resolves_strings_and_dicts_to_fresh_layers(spec, expected):
    first, second = activations.get(spec), activations.get(spec)
    assert first is not second
    config = first.get_config()
    for key, value in expected.items():
        assert config[key] == value
        assert type(config[key]) is type(value)


def test_callables_pass_through():
    fn = tf.nn.relu
    assert activations.get(fn) is fn
    layer = activations.get("smelu")
    assert activations.get(layer) is layer
    assert isinstance(activations.get(activations.lookup("mish").cls), keras.layers.Layer)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("smeluu", r"unknown activation 'smeluu'; valid choices: .*gsmelu.*relu.*smelu"),
        ({"name": "nope"}, r"unknown activation 'nope'; valid choices: .*smelu_learnable"),
        ("smelu(beta=0)", r"beta must be > 0 .*Parameters: beta: float = 1.0"),
        ("smelu(beta=-1)", r"beta must be > 0 \(got -1.0\)"),
        ({"name": "smelu", "beta": "big"}, r"parameter beta must be float, got 'big'"),
        ("smelu(beta='1')", r"parameter beta must be float, got '1'"),
        ("smelu(beta=True)", r"parameter beta must be float, got True"),
        ("smelu(beta=float('nan'))", r"value of beta must be a literal"),
        ("smelu(beta=1e999)", r"beta must be finite"),
        ("gsmelu(alpha=0, beta=0)", r"alpha \+ beta must be > 0"),
        ("gsmelu(alpha=-1, beta=2)", r"alpha must be >= 0"),
        ("gsmelu(per_unit=True)", r"per_unit needs learnable=True"),
        ("smelu(gamma=2)", r"'smelu' has no parameter 'gamma'. Parameters: beta: float = 1.0"),
        ("smelu(0.5)", r"keyword arguments only"),
        ("smelu(beta=", r"cannot parse activation"),
        ({"beta": 1.0}, r"needs a 'name' key.*valid choices"),
        (42, r"cannot resolve activation 42.*valid choices"),
        ("smelu_learnable(beta=0.0001)", r"beta must be > min_beta"),
        ("softplus(gamma=0)", r"gamma must be > 0"),
    ],
)
def test_bad_specs_raise_value_error_with_choices(spec, message):
    with pytest.raises(ValueError, match=message):
        activations.get(spec)


def test_register_rejects_duplicates_and_params_without_defaults():
    with pytest.raises(ValueError, match="already registered"):
        registry.register("smelu")(type("Dup", (keras.layers.Layer,), {}))

    class NoDefault(keras.layers.Layer):
        def __init__(self, k, **kwargs):
            super().__init__(**kwargs)

    with pytest.raises(TypeError, match="needs a default"):
        registry.register("no_default_test")(NoDefault)


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_get_config_round_trip_and_keras_serialization(name):
    layer = activations.get(name)
    x = tf.constant(np.linspace(-3, 3, 24).reshape(4, 6), tf.float32)
    y = layer(x)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    # Through Keras' own registry (what model loading uses), by the registered class name.
    serialized = keras.layers.serialize(layer)
    assert serialized["registered_name"] == f"recsys>{type(layer).__name__}"
    restored = keras.layers.deserialize(serialized)
    assert type(restored) is type(layer)
    restored(x)
    if layer.weights:
        restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(restored(x).numpy(), y.numpy(), rtol=1e-6)
    # A Keras serialization dict resolves through the registry too.
    assert type(activations.get(serialized)) is type(layer)


def test_model_with_registry_activations_round_trips_through_keras_config():
    inputs = keras.Input((5,))
    h = keras.layers.Dense(8, kernel_initializer="ones")(inputs)
    h = activations.get("smelu(beta=0.5)")(h)
    h = keras.layers.Dense(8, activation=activations.get("gsmelu(alpha=0.3, g_minus=0.02)"))(h)
    h = activations.get("smelu_learnable(per_unit=True)")(h)
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(0).normal(size=(7, 5)).astype("float32")
    np.testing.assert_allclose(clone(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_describe_lists_every_activation_with_parameters():
    text = activations.describe()
    for name in BUILT_IN:
        assert f"\n{name} " in text
    assert "alpha=1.0, beta=1.0, g_minus=0.0, g_plus=1.0, t=0.0" in text
    assert "beta=1.0, per_unit=False, min_beta=0.001" in text


def test_cli_lists_the_registry():
    out = subprocess.run(
        [sys.executable, "-m", "recsys.cli", "activations"], capture_output=True, text=True,
        timeout=120, check=True,
    ).stdout
    assert "smelu_learnable" in out and "gsmelu" in out and "rescu" in out
    bad = subprocess.run(
        [sys.executable, "-m", "recsys.cli", "activations", "--show", "smelu(beta=0)"],
        capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode != 0 and "beta must be > 0" in bad.stderr


def test_readme_extension_example_registers_and_round_trips():
    """The README's "Extending the registry" example, verbatim in spirit."""
    from recsys.activations import register
    from recsys.activations.base import ActivationLayer, require

    @register("shifted_softplus_test", aliases=("ssp_test",))
    class ShiftedSoftplusTest(ActivationLayer):
        """softplus(x) - log 2: zero at the origin."""

        def __init__(self, gamma: float = 1.0, **kwargs):
            super().__init__(**kwargs)
            require(gamma > 0, f"gamma must be > 0 (got {gamma!r})")
            self.gamma = float(gamma)

        def call(self, x):
            return tf.nn.softplus(self.gamma * x) / self.gamma - tf.math.log(2.0) / self.gamma

    layer = activations.get("ssp_test(gamma=2)")
    assert layer(tf.constant([0.0])).numpy()[0] == pytest.approx(0.0, abs=1e-7)
    assert "shifted_softplus_test" in activations.describe()
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, ShiftedSoftplusTest) and restored.gamma == 2.0
    with pytest.raises(ValueError, match="gamma must be > 0.*Parameters: gamma: float = 1.0"):
        activations.get("shifted_softplus_test(gamma=-1)")


@pytest.mark.parametrize(
    ("spec", "canonical", "tag"),
    [
        ("smelu(beta=1)", "smelu", "smelu"),
        ("SmeLU(beta=1.0)", "smelu", "smelu"),
        ({"name": "smelu", "beta": 0.5}, "smelu(beta=0.5)", "smelu_beta_0.5"),
        ("smelu(beta=2)", "smelu(beta=2.0)", "smelu_beta_2.0"),
        ("gsmelu(g_minus=0.01, alpha=0.5)", "gsmelu(alpha=0.5, g_minus=0.01)",
         "gsmelu_alpha_0.5_g_minus_0.01"),
        ("silu", "swish", "swish"),
    ],
)
def test_one_canonical_string_per_activation(spec, canonical, tag):
    from recsys.activations import Activation
    from recsys.repro.summaries import group_tag

    a = Activation.parse(spec)
    assert (str(a), group_tag(str(a))) == (canonical, tag)
    assert Activation.parse(str(a)) == a  # the canonical string parses back to the same value
    assert type(a.build()).__name__ == type(activations.get(spec)).__name__


def test_canonical_parse_keeps_the_registry_errors():
    from recsys.activations import Activation

    with pytest.raises(ValueError, match="beta must be > 0"):
        Activation.parse("smelu(beta=-1)")
    with pytest.raises(ValueError, match="unknown activation 'smeluu'"):
        Activation.parse("smeluu")
