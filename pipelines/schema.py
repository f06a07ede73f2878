"""Dataset schema: how raw delimited text maps to columns, features, the label and the split.

One schema describes every source (Criteo and MovieLens have built-in ones; ``--source=csv`` loads
one from YAML), so a new dataset needs a schema file and no code change.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Any

from pipelines import typed
from pipelines.typed import TypedError

COLUMN_KINDS = ("categorical", "numeric", "multi_categorical", "ignored", "label")
FEATURE_KINDS = ("categorical", "numeric", "multi_categorical")
SPLIT_METHODS = ("hash", "time")
_RULE_RE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")


class SchemaError(TypedError):
    """A schema file or value is invalid; the message says what and how to fix it."""


@dataclass(frozen=True)
class Column:
    """One column of the raw text, in file order."""

    name: str
    kind: str
    separator: str = ""  # multi_categorical only
    clip_min: float | None = None  # numeric only
    clip_max: float | None = None
    log1p: bool = False
    default: float = 0.0


@dataclass(frozen=True)
class LabelRule:
    """Turns the raw label text into 0/1: ``binary``, a comparison like ``>= 4``, or a value set."""

    column: str
    rule: str = "binary"
    positive_values: tuple[str, ...] = ()
    name: str = "label"

    def describe(self) -> str:
        if self.positive_values:
            return f"{self.column} in {list(self.positive_values)}"
        if self.rule == "binary":
            return f"{self.column} (0/1)"
        return f"{self.column} {self.rule}"

    def compile(self):
        """Return ``f(raw: str) -> float`` raising ValueError for a value the rule cannot read."""
        if self.positive_values:
            positives = frozenset(self.positive_values)
            return lambda raw: 1.0 if raw in positives else 0.0
        if self.rule == "binary":

            def binary(raw: str) -> float:
                value = float(raw)
                if value not in (0.0, 1.0):
                    raise ValueError(f"label must be 0 or 1, got {raw!r}")
                return value

            return binary
        m = _RULE_RE.match(self.rule)
        if not m:
            raise SchemaError(
                f"label rule {self.rule!r} is not understood; use 'binary', a comparison such as "
                "'>= 4' (operators >= > <= < == !=), or positive_values: [...]"
            )
        op, threshold = m.group(1), float(m.group(2))
        ops = {
            ">=": lambda v: v >= threshold,
            ">": lambda v: v > threshold,
            "<=": lambda v: v <= threshold,
            "<": lambda v: v < threshold,
            "==": lambda v: v == threshold,
            "!=": lambda v: v != threshold,
        }
        test = ops[op]

        def compare(raw: str) -> float:
            value = float(raw)
            if value != value:
                raise ValueError(f"label is NaN: {raw!r}")
            return 1.0 if test(value) else 0.0

        return compare


@dataclass(frozen=True)
class SplitRule:
    """Deterministic train/eval split: hash of key columns (empty key = the raw line) or time."""

    method: str = "hash"
    key: tuple[str, ...] = ()
    eval_fraction: float = 0.1
    salt: str = ""
    time_column: str = ""
    time_threshold: float | None = None


@dataclass(frozen=True)
class Schema:
    """A delimited-text dataset layout."""

    name: str
    columns: tuple[Column, ...]
    label: LabelRule
    delimiter: str = "\t"
    header: bool = False
    encoding: str = "utf-8"
    split: SplitRule = field(default_factory=SplitRule)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise SchemaError(f"no column {name!r}; columns: {self.column_names}")

    @property
    def features(self) -> list[Column]:
        return [c for c in self.columns if c.kind in FEATURE_KINDS and c.name != self.label.column]

    def validate(self) -> Schema:
        """Raise SchemaError on any inconsistency; return self."""
        names = self.column_names
        if not names:
            raise SchemaError(f"schema {self.name!r} has no columns")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SchemaError(f"schema {self.name!r}: duplicate column names {dupes}")
        for c in self.columns:
            if c.kind not in COLUMN_KINDS:
                raise SchemaError(
                    f"schema {self.name!r}: column {c.name!r} has kind {c.kind!r}; "
                    f"valid kinds: {', '.join(COLUMN_KINDS)}"
                )
            if c.kind == "multi_categorical" and not c.separator:
                raise SchemaError(
                    f"schema {self.name!r}: multi_categorical column {c.name!r} needs a separator"
                )
            if c.kind == "multi_categorical" and c.separator == self.delimiter:
                raise SchemaError(f"schema {self.name!r}: column {c.name!r} separator equals the delimiter")
            if c.name == self.label.name and c.name != self.label.column:
                raise SchemaError(f"schema {self.name!r}: feature {c.name!r} clashes with the label name")
        if self.label.column not in names:
            raise SchemaError(f"schema {self.name!r}: label column {self.label.column!r} not among {names}")
        self.label.compile()
        if not self.features:
            raise SchemaError(f"schema {self.name!r} has no feature columns")
        s = self.split
        if s.method not in SPLIT_METHODS:
            raise SchemaError(f"split method {s.method!r}; valid: {', '.join(SPLIT_METHODS)}")
        if not 0.0 <= s.eval_fraction < 1.0:
            raise SchemaError(f"eval_fraction must be in [0, 1), got {s.eval_fraction}")
        for k in s.key:
            if k not in names:
                raise SchemaError(f"split key column {k!r} not among {names}")
        if s.method == "time":
            if s.time_column not in names:
                raise SchemaError(f"split time_column {s.time_column!r} not among {names}")
        if len(self.delimiter) != 1:
            raise SchemaError(f"delimiter must be one character, got {self.delimiter!r}")
        return self


def _shorthands(d: dict[str, Any], name: str) -> dict[str, Any]:
    """Expand what a hand-written schema may abbreviate: a column as its bare name (categorical), the label
    as its column's name, the split key as one string, ``delimiter: tab``; the file's name as the default."""
    d = dict(d)
    raw_cols = d.get("columns") or []
    if not isinstance(raw_cols, list):
        raise SchemaError("'columns' must be a list of {name, kind, ...} mappings")
    cols = []
    for i, c in enumerate(raw_cols):
        if isinstance(c, str):
            c = {"name": c, "kind": "categorical"}
        if not isinstance(c, dict) or "name" not in c or "kind" not in c:
            raise SchemaError(
                f"column #{i} must be a mapping with 'name' and 'kind' "
                f"(valid kinds: {', '.join(COLUMN_KINDS)}), got {c!r}"
            )
        cols.append(c)
    d["columns"] = cols
    lab = d.get("label")
    if isinstance(lab, str):
        lab = {"column": lab}
    if not isinstance(lab, dict) or "column" not in lab:
        raise SchemaError("'label' must name its column: label: {column: NAME, rule: '>= 4'}")
    d["label"] = {**lab, "positive_values": lab.get("positive_values") or ()}
    split = d.get("split") or {}
    if isinstance(split, dict) and isinstance(split.get("key"), str):
        split = {**split, "key": [split["key"]]}
    d["split"] = split
    if d.get("delimiter") in ("\\t", "tab"):
        d["delimiter"] = "\t"
    d["name"] = str(d.get("name") or name or "csv")
    return d


def schema_from_dict(d: dict[str, Any], name: str = "") -> Schema:
    """Build and validate a Schema from its YAML/JSON mapping (through the one loader, pipelines.typed)."""
    if not isinstance(d, dict):
        keys = ", ".join(f.name for f in dataclasses.fields(Schema))
        raise SchemaError(f"a schema must be a mapping with keys {keys}")
    schema = typed.from_dict(Schema, _shorthands(d, name), error=SchemaError, lenient=True, what="schema")
    return schema.validate()


def load_schema(path: str) -> Schema:
    """Load a YAML (or JSON) schema file; errors name the file."""
    import yaml

    if not os.path.exists(path):
        raise SchemaError(f"schema file not found: {path}")
    with open(path, encoding="utf-8") as fh:
        try:
            d = yaml.safe_load(fh)
        except yaml.YAMLError as err:
            raise SchemaError(f"schema {path} is not valid YAML: {err}") from err
    try:
        return schema_from_dict(d, name=os.path.splitext(os.path.basename(path))[0])
    except SchemaError as err:
        raise SchemaError(f"schema {path}: {err}") from err
