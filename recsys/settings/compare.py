"""``recsys compare`` settings, one field per flag (``compare:`` in a config file)."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.typed import setting
from recsys.settings.gate import GateSettings


@dataclass(frozen=True)
class CompareSettings(GateSettings):
    """An offline diff of two exports on a preprocessed eval split, and its gate."""

    data: str = setting("", "directory with feature_spec.json (its eval split is scored; required)")
    max_examples: int = setting(0, "score only the first N eval examples (0 = all)")
    k: int = setting(10, "k of top-k churn")
    batch_size: int = setting(64, "eval rows per query for top-k churn (as the monitor's requests)")
    require_identical_weights: bool = setting(False, "fail (exit 1) unless the weight digests are equal")
    json: str = setting("", "also write the full result as JSON here ('-' = stdout only JSON)")
    max_churn: float | None = setting(None, "deprecated alias of --max_flip_rate")
    churn_threshold: float | None = setting(None, "deprecated alias of --flip_threshold")

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("data is required (the --output directory of `recsys preprocess`)")
        if self.max_examples < 0:
            raise ValueError(f"max_examples must be >= 0, got {self.max_examples}")
        if self.k < 1 or self.batch_size < 1:
            raise ValueError(f"k and batch_size must be >= 1, got {self.k} and {self.batch_size}")
