"""``recsys query``: send rows to a model server and print one prediction line per row.

    recsys query --server=127.0.0.1:8500 --model_name=ranker --rows=rows.jsonl
    recsys query --rest --server=127.0.0.1:8501 --model_name=ranker --label=stable --rows=rows.csv
Rows: JSON lines of {feature: value}, CSV with a header, or Criteo TSV (label, I1-I13, C1-C26). The
client reads the signature's inputs from GetModelMetadata, so any model's feature names work.
"""

from __future__ import annotations

import json
import pathlib
import sys
from collections.abc import Iterator
from typing import Any

from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("server", "127.0.0.1:8500", "host:port of the gRPC (or with --rest, REST) API")
flags.DEFINE_bool("rest", False, "use the REST API instead of gRPC")
flags.DEFINE_string("model_name", "default", "model to query")
flags.DEFINE_integer("version", 0, "model version (0: the latest)")
flags.DEFINE_string("label", "", "version label (instead of --version)")
flags.DEFINE_string("signature_name", "", "signature (default serving_default)")
flags.DEFINE_string("rows", "", "file of rows (required; '-' reads JSON lines from stdin)")
flags.DEFINE_enum("format", "auto", ["auto", "jsonl", "csv", "criteo"], "format of --rows")
flags.DEFINE_integer("batch_size", 256, "rows per request")
flags.DEFINE_string("output", "", "print only this output (default: all outputs)")
flags.DEFINE_float("timeout", 30.0, "per-request deadline in seconds")
flags.DEFINE_string("root_cert", "", "PEM CA certificate: connect over TLS")


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value.tolist() if hasattr(value, "tolist") else value


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise SystemExit(f"recsys query: unexpected arguments {argv[1:]}")
    if not FLAGS.rows:
        raise SystemExit("recsys query: --rows is required")
    from serving.tools import client as clients

    target = (
        FLAGS.model_name
        + (f"@{FLAGS.version}" if FLAGS.version else "")
        + (f":{FLAGS.label}" if FLAGS.label else "")
    )
    replica = clients.Replica.parse(
        ("http://" if FLAGS.rest else "") + f"{FLAGS.server}/{target}", FLAGS.signature_name
    )
    root = pathlib.Path(FLAGS.root_cert).read_bytes() if FLAGS.root_cert else None
    client = clients.connect(replica, FLAGS.timeout, root)
    try:
        specs = client.inputs(replica.spec)
        rows: Iterator[dict[str, Any]]
        if FLAGS.rows == "-":
            rows = (json.loads(line) for line in sys.stdin if line.strip())
        else:
            rows = clients.read_rows(FLAGS.rows, FLAGS.format)
        for batch in clients.batches(rows, FLAGS.batch_size):
            outputs = client.predict(replica.spec, clients.rows_to_inputs(batch, specs))
            if FLAGS.output:
                outputs = {FLAGS.output: outputs[FLAGS.output]}
            for i in range(len(batch)):
                print(json.dumps({a: _plain(v[i]) for a, v in outputs.items()}), flush=False)
        sys.stdout.flush()
    except Exception as err:  # noqa: BLE001 - a failed request is an error line and exit 1
        reason = str(err)
        code, details = getattr(err, "code", None), getattr(err, "details", None)
        if callable(code) and callable(details):  # a grpc.RpcError
            reason = f"{code().name}: {details()} (server {FLAGS.server})"
        print(f"recsys query: {reason}", file=sys.stderr)
        sys.exit(1)
    finally:
        client.close()
