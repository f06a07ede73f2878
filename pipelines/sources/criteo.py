"""The Criteo Display Advertising TSV layout: label, I1-I13 integer counts, C1-C26 hashed ids."""

from __future__ import annotations

from pipelines.schema import Column, LabelRule, Schema, SplitRule

NUM_INTEGER = 13
NUM_CATEGORICAL = 26
INTEGER_COLUMNS = tuple(f"I{i}" for i in range(1, NUM_INTEGER + 1))
CATEGORICAL_COLUMNS = tuple(f"C{i}" for i in range(1, NUM_CATEGORICAL + 1))


def criteo_schema(eval_fraction: float = 0.1, salt: str = "", name: str = "criteo") -> Schema:
    """No header, tab-separated, empty field = missing; counts clipped at 0 then log1p."""
    cols = [Column("label", "label")]
    cols += [Column(c, "numeric", clip_min=0.0, log1p=True, default=0.0) for c in INTEGER_COLUMNS]
    cols += [Column(c, "categorical") for c in CATEGORICAL_COLUMNS]
    return Schema(
        name=name,
        columns=tuple(cols),
        label=LabelRule(column="label", rule="binary", name="label"),
        delimiter="\t",
        header=False,
        split=SplitRule(method="hash", key=(), eval_fraction=eval_fraction, salt=salt),
    ).validate()
