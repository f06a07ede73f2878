"""``recsys rows`` settings: which preprocessed split, how many rows, where to (``rows:`` in a config)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipelines.typed import setting


@dataclass(frozen=True)
class RowsSettings:
    """Query rows (JSON lines of raw feature values) from a split that ``recsys preprocess`` wrote."""

    data: str = setting("", "directory written by `recsys preprocess` (holds feature_spec.json; required)")
    split: Literal["eval", "train"] = setting("eval", "split to take the rows from")
    count: int = setting(100, "number of rows (fewer if the split has fewer)")
    skip: int = setting(0, "rows of the split to skip first")
    label: bool = setting(False, "add the label to each row (clients ignore unknown keys)")
    output: str = setting("-", "file to write ('-': stdout)")

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("data is required (the --output directory of `recsys preprocess`)")
        if self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")
        if self.skip < 0:
            raise ValueError(f"skip must be >= 0, got {self.skip}")
