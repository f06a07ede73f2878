"""Run as a script: with tf_keras, keras and TFRS blocked, import all of serving/, serve, Predict twice.

argv: [base_path model_name]; without them it exports the tiny test model. Prints one JSON line:
the outputs of a gRPC and a REST Predict of the warm-up request, and the recsys modules imported.
"""

import importlib.abc
import importlib.machinery
import sys

BLOCKED = ("tf_keras", "keras", "tensorflow_recommenders")


class _Block(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Any import of the Keras packages raises ImportError.

    The spec has no origin, so TensorFlow's start-up probe (``find_spec("keras")``, which only
    reads the location) sees no package, as when Keras is not installed.
    """

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, self, origin=None)
        return None

    def create_module(self, spec):
        raise ImportError(f"blocked for this test: {spec.name}")

    def exec_module(self, module):  # pragma: no cover - create_module always raises
        raise ImportError(f"blocked for this test: {module.__name__}")


sys.meta_path.insert(0, _Block())

import json  # noqa: E402
import os  # noqa: E402
import pkgutil  # noqa: E402
import tempfile  # noqa: E402
import urllib.request  # noqa: E402

import serving  # noqa: E402

for info in pkgutil.walk_packages(serving.__path__, "serving."):
    importlib.import_module(info.name)
recsys_modules = sorted(m for m in sys.modules if m == "recsys" or m.startswith("recsys."))

import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import prediction_log_pb2, prediction_service_pb2_grpc  # noqa: E402

from serving import codec, testing  # noqa: E402
from serving.model_config import single_model_config  # noqa: E402
from serving.server import ModelServer, ServerOptions  # noqa: E402
from serving.warmup import WARMUP_PATH  # noqa: E402

if len(sys.argv) > 2:
    base, name = sys.argv[1], sys.argv[2]
else:
    base, name = os.path.join(tempfile.mkdtemp(), "tiny"), "tiny"
    testing.export_tiny(base, 1, bias=0.0)
version = max(int(v) for v in os.listdir(base) if v.isdigit())
loaded = tf.saved_model.load(os.path.join(base, str(version)))  # the TF2 loader needs no Keras either
record = next(iter(tf.data.TFRecordDataset(os.path.join(base, str(version), WARMUP_PATH))))
request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
request.model_spec.name = name
request.model_spec.ClearField("version")

server = ModelServer(ServerOptions([single_model_config(name, base)], port=0, rest_api_port=0)).start()
try:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=60)
    grpc_out = {k: codec.to_numpy(v).tolist() for k, v in response.outputs.items()}
    inputs = {k: codec.to_numpy(v) for k, v in request.inputs.items()}
    columns = {
        k: [x.decode() if isinstance(x, bytes) else x for x in v.tolist()] for k, v in inputs.items()
    }
    body = json.dumps({"inputs": columns}).encode()
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/{name}:predict"
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=60) as reply:
        rest_out = json.loads(reply.read())["outputs"]
finally:
    server.stop(grace=0)
keras_loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
try:
    import tf_keras  # noqa: F401
    blocked = False
except ImportError:
    blocked = True
print(json.dumps({
    "grpc": grpc_out,
    "rest": rest_out,
    "recsys_modules": recsys_modules,
    "keras_modules": keras_loaded,
    "blocked": blocked,
    "signatures": sorted(loaded.signatures),
}))
