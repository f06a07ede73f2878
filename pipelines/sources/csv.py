"""Any delimited file described by a YAML schema (see configs/schemas/ and docs/preprocess.md)."""

from __future__ import annotations

import dataclasses
from typing import Any

from pipelines.schema import Schema, SchemaError, load_schema


def csv_schema(path: str, eval_fraction: float | None = None, salt: str | None = None) -> Schema:
    """Load the schema file; command-line split settings, when given, override the file's."""
    if not path:
        raise SchemaError("--source=csv needs --schema=PATH (a YAML file, see configs/schemas/)")
    schema = load_schema(path)
    changes: dict[str, Any] = {}
    if eval_fraction is not None:
        changes["eval_fraction"] = eval_fraction
    if salt is not None:
        changes["salt"] = salt
    if changes:
        schema = dataclasses.replace(schema, split=dataclasses.replace(schema.split, **changes))
    return schema.validate()
