"""Clients for the server (gRPC by default, REST) and the row readers used by ``recsys query``/``monitor``.

Generic like the server: the client asks GetModelMetadata for the signature's inputs and converts
each row's values to those dtypes (missing numeric -> NaN, missing string -> ""), so it never needs
to know a model's feature names.
"""

from __future__ import annotations

import csv
import dataclasses
import http.client
import json
import math
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    model_pb2,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
)

from serving import codec
from serving.shadow import parse_target
from serving.tools.tls import PLAIN, ClientTLS

CRITEO_COLUMNS = ["label"] + [f"I{i}" for i in range(1, 14)] + [f"C{i}" for i in range(1, 27)]


@dataclasses.dataclass(frozen=True)
class InputSpec:
    alias: str
    dtype: int
    shape: tuple[int, ...] | None


@dataclasses.dataclass(frozen=True)
class Replica:
    """``[grpc://|http://]host:port/model[@version|:label]``: one model on one server."""

    address: str
    spec: model_pb2.ModelSpec
    rest: bool = False

    @classmethod
    def parse(cls, text: str, signature_name: str = "") -> Replica:
        rest = text.startswith(("http://", "https://", "rest://"))
        body = text.split("://", 1)[1] if "://" in text else text
        if "/" not in body:
            raise ValueError(f"bad replica {text!r}: expected host:port/model[@version|:label]")
        address, model = body.split("/", 1)
        spec = parse_target(model)
        spec.signature_name = signature_name
        return cls(address, spec, rest)

    @property
    def label(self) -> str:
        which = self.spec.WhichOneof("version_choice")
        suffix = (
            f"@{self.spec.version.value}"
            if which == "version"
            else f":{self.spec.version_label}"
            if which == "version_label"
            else ""
        )
        return f"{self.address}/{self.spec.name}{suffix}"


class WrongPortError(RuntimeError):
    """A client reached the other API's port: gRPC an HTTP/1.x server (REST), or REST an HTTP/2 one (gRPC)."""


def wrong_port_hint(err: BaseException, address: str) -> str:
    """What to do when ``err`` shows an HTTP/1.x answer to gRPC ('' for any other error).

    gRPC reports it as UNAVAILABLE (or INTERNAL) ``Failed parsing HTTP/2 ... Trying to connect an
    http1.x server``, which names neither port nor fix.
    """
    code, details = getattr(err, "code", None), getattr(err, "details", None)
    if not (callable(code) and callable(details)):
        return ""
    text = details() or ""
    if code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL) or not (
        "http1.x server" in text or "Failed parsing HTTP/2" in text
    ):
        return ""
    return (
        f"{address} answered in HTTP/1.x: this looks like the REST port; the gRPC port is the server's "
        "--port (8500 by default; `recsys serve` prints both), or use the REST API here "
        "(--rest, or an http:// replica)"
    )


def explain_rpc_error(err: Exception, address: str) -> str:
    """One line for a failed call: the wrong-port hint, ``CODE: details`` for other RPC errors, else str."""
    hint = wrong_port_hint(err, address)
    if hint:
        return hint
    code, details = getattr(err, "code", None), getattr(err, "details", None)
    if callable(code) and callable(details):
        return f"{code().name}: {details()} (server {address})"
    return str(err)


class GrpcClient:
    """PredictionService over one channel (TLS when ``root_certificates`` is given).

    ``client_cert`` / ``client_key`` (PEM): the certificate presented to a server started with
    ``--ssl_client_ca`` (mutual TLS). ``channel``: one already made (:meth:`ClientTLS.channel`).
    """

    OPTIONS = [("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)]

    def __init__(
        self,
        address: str,
        timeout: float = 30.0,
        root_certificates: bytes | None = None,
        client_cert: bytes | None = None,
        client_key: bytes | None = None,
        channel: grpc.Channel | None = None,
    ):
        options = self.OPTIONS
        tls = root_certificates or client_cert
        credentials = grpc.ssl_channel_credentials(root_certificates, client_key, client_cert)
        self.channel = (
            channel
            if channel is not None
            else grpc.secure_channel(address, credentials, options)
            if tls
            else grpc.insecure_channel(address, options)
        )
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.timeout = timeout
        self.address = address

    def _call(self, method, request):
        """One RPC; an HTTP/1.x answer (the REST port given for gRPC) is a :class:`WrongPortError`."""
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as err:
            hint = wrong_port_hint(err, self.address)
            if hint:
                raise WrongPortError(hint) from None
            raise

    def inputs(self, spec: model_pb2.ModelSpec) -> dict[str, InputSpec]:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.CopyFrom(spec)
        response = self._call(self.stub.GetModelMetadata, request)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sig_map)
        key = spec.signature_name or "serving_default"
        if key not in sig_map.signature_def:
            raise KeyError(
                f"model {spec.name} has no signature {key!r}; it has {sorted(sig_map.signature_def)}"
            )
        sig = sig_map.signature_def[key]
        return {
            a: InputSpec(
                a, i.dtype, None if i.tensor_shape.unknown_rank else tuple(d.size for d in i.tensor_shape.dim)
            )
            for a, i in sig.inputs.items()
        }

    def predict(self, spec: model_pb2.ModelSpec, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        request = predict_pb2.PredictRequest()
        request.model_spec.CopyFrom(spec)
        for alias, value in inputs.items():
            request.inputs[alias].CopyFrom(codec.from_numpy(value))
        response = self._call(self.stub.Predict, request)
        return {a: codec.to_numpy(t, max_elements=1 << 30) for a, t in response.outputs.items()}

    def close(self) -> None:
        self.channel.close()


class RestClient:
    """The REST API with the columnar ("inputs") format; HTTPS when ``ssl_context`` is given."""

    def __init__(self, address: str, timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None):
        scheme = "https" if ssl_context is not None else "http"
        self.base = address if address.startswith("http") else f"{scheme}://{address}"
        self.timeout = timeout
        self.ssl_context = ssl_context

    def _url(self, spec: model_pb2.ModelSpec, suffix: str) -> str:
        which = spec.WhichOneof("version_choice")
        path = f"{self.base}/v1/models/{spec.name}"
        if which == "version":
            path += f"/versions/{spec.version.value}"
        elif which == "version_label":
            path += f"/labels/{spec.version_label}"
        return path + suffix

    def _call(self, url: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        try:
            request = urllib.request.Request(url, data=data)
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.ssl_context) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"HTTP {err.code}: {err.read().decode(errors='replace')}") from err
        except http.client.BadStatusLine as err:
            if str(err.args[0] if err.args else "").startswith("\x00\x00"):  # an HTTP/2 frame: a gRPC server
                raise WrongPortError(
                    f"{self.base} answered in HTTP/2: this looks like the gRPC port; the REST port is the "
                    "server's --rest_api_port (8501 by default; `recsys serve` prints both), or use gRPC "
                    "here (no --rest, or a replica without http://)"
                ) from None
            raise

    def inputs(self, spec: model_pb2.ModelSpec) -> dict[str, InputSpec]:
        from google.protobuf import json_format
        from tensorflow.core.protobuf import meta_graph_pb2

        meta = self._call(self._url(spec, "/metadata"))
        key = spec.signature_name or "serving_default"
        sig = json_format.ParseDict(
            meta["metadata"]["signature_def"]["signature_def"][key], meta_graph_pb2.SignatureDef()
        )
        return {a: InputSpec(a, i.dtype, None) for a, i in sig.inputs.items()}

    def predict(self, spec: model_pb2.ModelSpec, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        def plain(arr):
            if arr.dtype.kind in "OS":
                return [
                    v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in arr.reshape(-1)
                ]
            return [None if isinstance(v, float) and math.isnan(v) else v for v in arr.tolist()]

        body = {"inputs": {a: plain(v) for a, v in inputs.items()}}
        if spec.signature_name:
            body["signature_name"] = spec.signature_name
        out = self._call(self._url(spec, ":predict"), body)["outputs"]
        if not isinstance(out, dict):  # one output: TF Serving returns its value without the name
            out = {self._single_output(spec): out}
        return {a: np.asarray(v) for a, v in out.items()}

    def _single_output(self, spec: model_pb2.ModelSpec) -> str:
        meta = self._call(self._url(spec, "/metadata"))
        sig = meta["metadata"]["signature_def"]["signature_def"][spec.signature_name or "serving_default"]
        names = list(sig.get("outputs", {}))
        return names[0] if len(names) == 1 else "output"

    def close(self) -> None:
        pass


def connect(replica: Replica, timeout: float = 30.0, tls: ClientTLS = PLAIN):
    """The client for a replica: REST (HTTPS with ``tls``) or gRPC (a TLS channel with ``tls``)."""
    if replica.rest:
        return RestClient(replica.address, timeout, tls.ssl_context())
    return GrpcClient(replica.address, timeout, channel=tls.channel(replica.address, GrpcClient.OPTIONS))


# ---- rows ------------------------------------------------------------------------------------------
def read_rows(path: str, fmt: str = "auto") -> Iterator[dict]:
    """Rows as {feature: value}: JSON lines, CSV with a header, or Criteo TSV (with/without label)."""
    if fmt == "auto":
        fmt = (
            "jsonl"
            if path.endswith((".jsonl", ".json"))
            else "csv"
            if path.endswith(".csv")
            else "criteo"
            if path.endswith((".txt", ".tsv"))
            else "jsonl"
        )
    with open(path, newline="") as fh:
        if fmt == "jsonl":
            for n, line in enumerate(fh, 1):
                if line.strip():
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError(f"{path}:{n}: each line must be a JSON object")
                    yield row
        elif fmt == "csv":
            yield from csv.DictReader(fh)
        elif fmt == "criteo":
            for line in fh:
                fields = line.rstrip("\n").split("\t")
                names = CRITEO_COLUMNS if len(fields) == 40 else CRITEO_COLUMNS[1:]
                if len(fields) != len(names):
                    raise ValueError(
                        f"{path}: Criteo rows have 39 or 40 tab-separated fields, got {len(fields)}"
                    )
                yield dict(zip(names, fields, strict=True))
        else:
            raise ValueError(f"unknown row format {fmt!r}: jsonl, csv or criteo")


def _value(value, dtype: int):
    np_dtype = codec.numpy_dtype(dtype)
    if np_dtype.kind == "O":
        if value is None:
            return b""
        return (
            value.encode()
            if isinstance(value, str)
            else value
            if isinstance(value, bytes)
            else str(value).encode()
        )
    if value is None or value == "":
        return float("nan") if np_dtype.kind == "f" else 0
    return float(value) if np_dtype.kind == "f" else int(float(value))


def rows_to_inputs(rows: list[dict], specs: dict[str, InputSpec]) -> dict[str, np.ndarray]:
    """Rows -> one column per signature input in its dtype (missing: NaN / 0 / "")."""
    out = {}
    for alias, spec in specs.items():
        values = [_value(row.get(alias), spec.dtype) for row in rows]
        out[alias] = codec.coerce(values, spec.dtype)
    return out


def read_request_log(path: str) -> Iterator[dict[str, np.ndarray]]:
    """Inputs of the PredictRequests in a PredictionLog TFRecord file (request logs, warm-up files)."""

    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.WhichOneof("log_type") == "predict_log":
            yield {a: codec.to_numpy(t) for a, t in log.predict_log.request.inputs.items()}


def batches(items: Iterator, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def prediction_of(outputs: dict[str, np.ndarray], output: str = "") -> np.ndarray:
    """The compared prediction: ``output`` if given, else the only output, else 'probability'/'scores'."""
    if output:
        return outputs[output]
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    for name in ("probability", "scores", "outputs", "predictions"):
        if name in outputs:
            return outputs[name]
    raise KeyError(f"several outputs {sorted(outputs)}; choose one with --output")
