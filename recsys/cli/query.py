"""``recsys query``: send rows to a model server and print one prediction line per row.

    recsys query --server=127.0.0.1:8500 --model_name=ranker --rows=rows.jsonl
    recsys query --rest --server=127.0.0.1:8501 --model_name=ranker --label=stable --rows=rows.csv
Rows: JSON lines of {feature: value}, CSV with a header, or Criteo TSV (label, I1-I13, C1-C26). The
client reads the signature's inputs from GetModelMetadata, so any model's feature names work. Flags are
generated from :class:`recsys.settings.query.QuerySettings`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

from recsys.cli import exits
from recsys.cli.flagging import Flags
from recsys.settings.query import QuerySettings

SETTINGS = Flags(QuerySettings, "query")


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value.tolist() if hasattr(value, "tolist") else value


def run(settings: QuerySettings) -> int:
    """Send the rows of ``settings``, print one JSON line per row; the exit status (1: a failed request)."""
    from serving.tools import client as clients

    try:
        replica = clients.Replica.parse(settings.replica(), settings.signature_name)
    except ValueError as err:
        raise SystemExit(f"recsys query: {err}") from None
    client = clients.connect(replica, settings.timeout, settings.client_tls())
    try:
        specs = client.inputs(replica.spec)
        rows: Iterator[dict[str, Any]]
        if settings.rows == "-":
            rows = (json.loads(line) for line in sys.stdin if line.strip())
        else:
            rows = clients.read_rows(settings.rows, settings.format)
        for batch in clients.batches(rows, settings.batch_size):
            outputs = client.predict(replica.spec, clients.rows_to_inputs(batch, specs))
            if settings.output:
                outputs = {settings.output: outputs[settings.output]}
            for i in range(len(batch)):
                print(json.dumps({a: _plain(v[i]) for a, v in outputs.items()}), flush=False)
        sys.stdout.flush()
    except Exception as err:  # noqa: BLE001 - a failed request is an error line and exit 1
        print(f"recsys query: {clients.explain_rpc_error(err, settings.server)}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


def main(argv: list[str]) -> None:
    exits.no_arguments("query", argv)
    sys.exit(run(SETTINGS.load("query")))
