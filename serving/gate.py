"""The PD gate's thresholds: one type, one set of names and defaults for compare, monitor, promote and shadow.

A limit of ``None`` is not checked. Each limit is named ``max_<metric>`` after the metric it bounds
(``relative_pd``, ``absolute_pd``, ``share_above``, ``flip_rate``, ``topk_churn``); ``flip_threshold`` is
the decision threshold of ``flip_rate`` (TFMA's ``BooleanFlipRates``: a prediction is positive when it is
greater than the threshold). The flags of ``recsys compare|monitor|promote`` are generated from these
fields (their ``help`` metadata), so the three commands list the same flags with the same defaults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

DEFAULT_FLIP_THRESHOLD = 0.5  # TFMA BooleanFlipRates' default


def _limit(help_text: str) -> Any:
    return dataclasses.field(default=None, metadata={"help": help_text})


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Gate limits (``None``: not checked) and the decision threshold the flip rate uses."""

    max_relative_pd: float | None = _limit("fail above this relative PD (mean |a-b| / ((a+b)/2))")
    max_absolute_pd: float | None = _limit("fail above this absolute PD (mean |a-b|)")
    max_share_above: float | None = _limit("fail above this share of rows whose relative difference is > 10%")
    max_flip_rate: float | None = _limit(
        "fail above this flip rate: share of rows whose decision (prediction > --flip_threshold) differs")
    max_topk_churn: float | None = _limit(
        "fail above this top-k churn: mean 1 - |top-k(a) & top-k(b)| / k per query (one request = one query)")
    flip_threshold: float = dataclasses.field(
        default=DEFAULT_FLIP_THRESHOLD, metadata={"help": "decision threshold of the flip rate"})

    def limits(self) -> dict[str, float]:
        """Metric name -> limit, for the limits that are set."""
        return {f.name[len("max_"):]: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name.startswith("max_") and getattr(self, f.name) is not None}

    def crossed(self, values: Mapping[str, float]) -> list[str]:
        """``metric=value > limit`` for each set limit that ``values`` (keyed by metric name) exceeds."""
        return [f"{metric}={values[metric]:.6g} > {limit:g}" for metric, limit in self.limits().items()
                if metric in values and values[metric] > limit]

    def as_dict(self) -> dict[str, float | None]:
        return dataclasses.asdict(self)


def gate_flags() -> list[tuple[str, float | None, str]]:
    """(flag name, default, help) of every field: what each command's ``--help`` lists."""
    return [(f.name, f.default, f.metadata["help"]) for f in dataclasses.fields(Thresholds)]  # type: ignore[misc]
