"""Query rows: raw feature values as JSON lines, the form ``recsys query``, ``monitor``, ``promote`` and
TF Serving's REST API take (one object per line, ``{feature: value}``; missing numeric values are
``null``, a multi-valued feature is its values joined by the spec's separator).

Rows come from a preprocessed split (the shards ``recsys preprocess`` wrote), so they are exactly what
the trained model saw: every feature of the spec, by name, with the label alongside when asked for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from pipelines import atomic
from pipelines.feature_spec import FeatureSpec
from recsys.compat import tf
from recsys.data.input import make_dataset
from recsys.export.warmup import raw_batch


def _json_value(value: Any) -> str | float | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    number = float(value)
    return None if math.isnan(number) else number


def iter_rows(spec: FeatureSpec, split: str = "eval", count: int = 100, skip: int = 0,
              label: bool = False) -> Iterator[dict[str, Any]]:
    """Up to ``count`` rows of ``split`` after the first ``skip``, in shard order."""
    if count < 1 or skip < 0:
        raise ValueError(f"count must be >= 1 and skip >= 0 (got count={count}, skip={skip})")
    seen = 0
    for features, labels in make_dataset(spec, split, 1024, max_examples=skip + count):
        columns = raw_batch(features, spec)
        for i in range(int(tf.shape(labels)[0])):
            seen += 1
            if seen <= skip:
                continue
            row = {name: _json_value(values[i]) for name, values in columns.items()}
            if label:
                row[spec.label.name] = float(labels[i])
            yield row


def write_rows(path: str, rows: Iterator[dict[str, Any]]) -> int:
    """Write rows as JSON lines (atomically); returns how many."""
    lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in rows]
    atomic.write_text(path, "".join(lines))
    return len(lines)
