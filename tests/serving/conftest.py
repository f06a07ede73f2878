"""Fixtures for the serving tests: tiny SavedModel versions and real servers on 127.0.0.1."""

from __future__ import annotations

import os

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import (
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import codec, testing
from serving.model_config import single_model_config
from serving.server import ModelServer, ServerOptions

BIASES = {1: 0.0, 2: 0.5, 3: -0.4}


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> dict[int, str]:
    """Version directories 1..3 of the tiny model (different biases), exported once per session."""
    base = str(tmp_path_factory.mktemp("exports") / "tiny")
    return {v: testing.export_tiny(base, v, bias=b) for v, b in BIASES.items()}


@pytest.fixture
def base_path(tmp_path, exported):
    """A fresh model base path for one test; ``add(version)`` copies an exported version in."""
    path = str(tmp_path / "tiny")
    os.makedirs(path)

    def add(version: int, source: int | None = None) -> str:
        return testing.copy_version(exported[source or version], path, version)

    add.path = path
    return add


@pytest.fixture
def serve():
    """Start servers (in this process, real sockets); all are stopped at the end of the test."""
    servers = []

    def start(models=None, base=None, name="tiny", **kwargs) -> ModelServer:
        kwargs.setdefault("file_system_poll_wait_seconds", 0.1)
        # the label and promotion tests drive HandleReloadConfigRequest; test_lockdown.py turns it off
        kwargs.setdefault("allow_config_reload", True)
        models = models or [single_model_config(name, base)]
        server = ModelServer(ServerOptions(models, **kwargs)).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop(grace=0.1)


class Stubs:
    """gRPC stubs for one server."""

    def __init__(self, port: int):
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model = model_service_pb2_grpc.ModelServiceStub(self.channel)


@pytest.fixture
def stubs():
    made = []

    def make(server: ModelServer) -> Stubs:
        s = Stubs(server.port)
        made.append(s)
        return s

    yield make
    for s in made:
        s.channel.close()


ROWS = {
    "cat": np.array([b"a", b"b", b"c", b"zz"], dtype=object),
    "x1": np.array([1.0, -2.0, 0.5, 3.0], np.float32),
    "x2": np.array([2.0, 0.0, -1.0, 1.5], np.float32),
}


def predict_request(
    name="tiny", rows=None, version=None, label=None, signature=""
) -> predict_pb2.PredictRequest:
    rows = ROWS if rows is None else rows
    req = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=name, signature_name=signature))
    if version is not None:
        req.model_spec.version.value = version
    if label is not None:
        req.model_spec.version_label = label
    for k, v in rows.items():
        req.inputs[k].CopyFrom(codec.from_numpy(v))
    return req


def expected(version: int, rows=None) -> np.ndarray:
    rows = ROWS if rows is None else rows
    return testing.reference(rows["cat"], rows["x1"], rows["x2"], BIASES[version])


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text -> {(sample name, sorted label pairs): value}, read by prometheus_client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
