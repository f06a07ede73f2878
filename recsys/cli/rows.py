"""``recsys rows``: query rows for ``recsys query``, ``monitor``, ``promote`` and TF Serving's REST API.

    recsys rows --data out/data/mine --count 100 --output rows.jsonl
    recsys rows --data out/data/mine --split eval --skip 1000 --count 50 --label | head -1

Each line is one JSON object of raw feature values by name, taken from a split that ``recsys
preprocess`` wrote (so every feature the model expects is there, as it arrived in the raw data; a
missing number is ``null``, a multi-valued feature its values joined by the spec's separator). Flags
are generated from :class:`recsys.settings.rows.RowsSettings`.
"""

from __future__ import annotations

import json
import sys

from recsys.cli import exits
from recsys.cli.flagging import Flags
from recsys.settings.rows import RowsSettings

SETTINGS = Flags(RowsSettings, "rows")


def run(settings: RowsSettings) -> int:
    """Write the rows; the exit status (1: the data cannot be read)."""
    from pipelines import feature_spec
    from recsys.data.rows import iter_rows, write_rows

    try:
        spec = feature_spec.load(settings.data)
        rows = iter_rows(spec, settings.split, settings.count, settings.skip, settings.label)
        if settings.output == "-":
            for row in rows:
                sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            return 0
        n = write_rows(settings.output, rows)
    except (FileNotFoundError, ValueError) as err:
        print(f"recsys rows: {err}", file=sys.stderr)
        return 1
    print(f"wrote {n} {settings.split} rows to {settings.output}", file=sys.stderr)
    return 0


def main(argv: list[str]) -> None:
    exits.no_arguments("rows", argv)
    sys.exit(run(SETTINGS.load("rows")))
