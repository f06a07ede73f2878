"""The model-management API is closed unless the operator opens it, and then only to allowed roots."""

from __future__ import annotations

import http.client
import os

import grpc
import numpy as np
import pytest
from google.protobuf import text_format
from tensorflow_serving.apis import get_model_status_pb2, model_management_pb2, model_pb2

from serving import codec, testing
from tests.serving.conftest import Stubs, expected, predict_request

C = grpc.StatusCode


def _reload(stubs: Stubs, text: str):
    config = text_format.Parse(text, model_management_pb2.ReloadConfigRequest().config)
    return stubs.model.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=config))


def _config(*models: tuple[str, str]) -> str:
    return "model_config_list {" + "".join(
        f' config {{ name: "{n}" base_path: "{p}" model_platform: "tensorflow" }}' for n, p in models
    ) + " }"


def _rest_status(server) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
    conn.request("GET", "/v1/models/tiny")
    status = conn.getresponse().status
    conn.close()
    return status


def _still_serves(s: Stubs) -> None:
    r = s.predict.Predict(predict_request(), timeout=60)
    assert r.model_spec.version.value == 1
    np.testing.assert_allclose(codec.to_numpy(r.outputs["probability"]), expected(1), rtol=1e-6)


def test_reload_is_refused_unless_the_operator_allows_it(base_path, serve):
    base_path(1)
    server = serve(base=base_path.path, rest_api_port=0, allow_config_reload=False)
    s = Stubs(server.port)
    for text in ("", _config(("tiny", base_path.path))):  # the empty config unloaded every model
        with pytest.raises(grpc.RpcError) as err:
            _reload(s, text)
        assert err.value.code() == C.PERMISSION_DENIED
        assert "--allow_config_reload" in err.value.details()
    assert _rest_status(server) == 200
    _still_serves(s)
    s.channel.close()


def test_an_empty_config_is_refused_even_when_reloads_are_allowed(base_path, serve):
    base_path(1)
    server = serve(base=base_path.path, rest_api_port=0, allow_config_reload=True)
    s = Stubs(server.port)
    with pytest.raises(grpc.RpcError) as err:
        _reload(s, "model_config_list {}")
    assert err.value.code() == C.FAILED_PRECONDITION
    assert "unload every model" in err.value.details()
    assert _rest_status(server) == 200
    _still_serves(s)
    s.channel.close()


def _booby_trapped(base: str, marker: str) -> str:
    """A SavedModel version whose init op (run by the loader) writes ``marker``: what an attacker ships."""
    import tensorflow as tf

    path = os.path.join(base, "1")
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        y = tf.identity(x, name="y")
        write = tf.io.write_file(marker, "written by the model's init op")
        builder = tf.compat.v1.saved_model.Builder(path)
        with tf.compat.v1.Session(graph=graph) as sess:
            signature = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})
            builder.add_meta_graph_and_variables(
                sess, ["serve"], signature_def_map={"serving_default": signature}, main_op=write
            )
        builder.save()
    return path


def test_a_base_path_outside_the_allowed_roots_is_never_loaded(base_path, serve, tmp_path_factory):
    """A SavedModel the client wrote elsewhere (directly or behind a symlink under the root): refused.

    The same model under an allowed root is loaded and its init op runs: the marker file proves it.
    """
    base_path(1)
    attacker = tmp_path_factory.mktemp("attacker")
    marker = str(attacker / "marker")
    evil = str(attacker / "evil")
    _booby_trapped(evil, marker)
    link = os.path.join(os.path.dirname(base_path.path), "link")
    os.symlink(evil, link)
    server = serve(base=base_path.path, allow_config_reload=True)
    s = Stubs(server.port)
    for path in (evil, link):
        with pytest.raises(grpc.RpcError) as err:
            _reload(s, _config(("tiny", base_path.path), ("evil", path)))
        assert err.value.code() == C.PERMISSION_DENIED
        assert "--allowed_model_roots" in err.value.details()
    assert not os.path.exists(marker)
    assert server.manager.model_names() == ["tiny"]
    with pytest.raises(grpc.RpcError) as err:
        s.model.GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="evil"))
        )
    assert err.value.code() == C.NOT_FOUND
    _still_serves(s)
    s.channel.close()
    # the control: where the operator allows it, the same reload loads the model and runs its init op
    trusting = serve(base=base_path.path, allow_config_reload=True, allowed_model_roots=(str(attacker),
                                                                                         base_path.path))
    t = Stubs(trusting.port)
    assert _reload(t, _config(("tiny", base_path.path), ("evil", evil))).status.error_code == 0
    assert os.path.exists(marker)
    t.channel.close()


def test_an_explicit_root_lets_a_reload_add_models_there(base_path, serve, exported, tmp_path_factory):
    base_path(1)
    root = tmp_path_factory.mktemp("models")
    other = str(root / "other")
    testing.copy_version(exported[3], other, 4)
    roots = (str(root), base_path.path)
    server = serve(base=base_path.path, allow_config_reload=True, allowed_model_roots=roots)
    s = Stubs(server.port)
    assert _reload(s, _config(("tiny", base_path.path), ("other", other))).status.error_code == 0
    assert s.predict.Predict(predict_request(name="other"), timeout=60).model_spec.version.value == 4
    s.channel.close()
