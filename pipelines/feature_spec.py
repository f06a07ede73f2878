"""The feature spec: the one contract between preprocessing (writer) and training/serving (readers).

Written by the pipeline as ``feature_spec.json`` next to the shards; read by the trainer to build the
model's input layer and by the exporter to build the serving signatures. Pure Python (no TensorFlow).

Shards hold *raw, validated* values; the transforms described here (vocabulary lookup, hashing,
clip/log1p, normalisation) are applied inside the model graph, so training and serving share one copy.

tf.Example encoding of one row in the shards:
- the label: ``float_list`` of length 1 (0.0 or 1.0);
- a numeric feature: ``float_list`` of length 1, absent when the raw value was missing;
- a categorical feature: ``bytes_list`` of length 1 (the raw string, UTF-8), absent when missing;
- a multi-valued categorical: ``bytes_list`` of its values (possibly empty).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from pipelines import atomic, typed

FORMAT_VERSION = 1
SPEC_FILENAME = "feature_spec.json"

Kind = Literal["numeric", "categorical", "multi_categorical"]


@dataclass(frozen=True)
class NumericTransform:
    """x -> clip(x, clip_min, clip_max) -> log1p (optional); stats are computed after this."""

    clip_min: float | None = None
    clip_max: float | None = None
    log1p: bool = False


@dataclass(frozen=True)
class NumericStats:
    """Moments of the *transformed* value over the training split (missing values excluded)."""

    mean: float = 0.0
    variance: float = 1.0
    count: int = 0
    missing: int = 0
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Feature:
    """One input feature. Fields that do not apply to a kind keep their defaults."""

    name: str
    kind: Kind
    dtype: str  # "float32" for numeric, "string" for (multi_)categorical
    # numeric
    default: float = 0.0  # raw value used when missing, before the transform
    transform: NumericTransform = field(default_factory=NumericTransform)
    stats: NumericStats = field(default_factory=NumericStats)
    # categorical / multi_categorical
    encoding: Literal["vocabulary", "hash", ""] = ""
    vocabulary_file: str = ""  # relative to the spec's directory; one value per line, most frequent first
    vocabulary_size: int = 0  # in-vocabulary entries (excluding OOV buckets)
    num_oov_buckets: int = 1
    hash_buckets: int = 0
    cardinality: int = 0  # distinct values seen in the training split
    separator: str = ""  # multi_categorical: separator of values in the raw text / serving input
    max_values: int = 0  # multi_categorical: largest number of values seen in one row

    @property
    def num_ids(self) -> int:
        """Number of ids the model's embedding needs for this feature (0 for numeric)."""
        if self.kind == "numeric":
            return 0
        if self.encoding == "hash":
            return self.hash_buckets
        return self.vocabulary_size + self.num_oov_buckets


@dataclass(frozen=True)
class Label:
    name: str = "label"
    rule: str = ""  # how the label was derived from the raw column, for people


@dataclass(frozen=True)
class DataFiles:
    """Glob patterns relative to the spec's directory."""

    train_pattern: str = "train/part-*.tfrecord.gz"
    eval_pattern: str = "eval/part-*.tfrecord.gz"
    compression: str = "GZIP"
    num_train_shards: int = 0
    num_eval_shards: int = 0
    errors_pattern: str = "errors-*.jsonl"  # dead-lettered rows (JSON lines: file, line, raw, reason)
    # The train split again in the columnar training format (pipelines/columnar.py): one shard per
    # train shard, same rows, same order, chunks of columnar_chunk_rows rows. "" when not written.
    columnar_pattern: str = ""
    columnar_compression: str = ""
    columnar_chunk_rows: int = 0
    columnar_rows: int = 0


@dataclass(frozen=True)
class Counts:
    """``read == written_train + written_eval + dead_lettered`` always holds."""

    read: int = 0
    written_train: int = 0
    written_eval: int = 0
    dead_lettered: int = 0


@dataclass(frozen=True)
class Split:
    method: str = "hash"  # "hash" of key columns, or "time" on a time column
    key: tuple[str, ...] = ()
    eval_fraction: float = 0.1
    salt: str = ""
    time_threshold: float | None = None


# What ordered the rows of a windowed output (``recsys preprocess --windows``): a timestamp, a schema's
# time column ("time_column:<name>"), or the row's position in the input ("row_order").
ORDER_TIMESTAMP = "timestamp"
ORDER_ROWS = "row_order"
ORDER_COLUMN = "time_column:"


@dataclass(frozen=True)
class Span:
    """Rows of one time interval: how many, what ordered them, and the first and last time among them
    (a timestamp, or for ``row_order`` the row's byte position in the inputs divided by their size)."""

    rows: int = 0
    order: str = ""
    first: float | None = None
    last: float | None = None


@dataclass(frozen=True)
class Window:
    """One consecutive time window of the train split (window 0 the oldest) and its shards."""

    index: int
    rows: int
    order: str
    first: float | None
    last: float | None
    train_pattern: str  # relative to the spec's directory, like DataFiles.train_pattern
    columnar_pattern: str = ""  # "" when the columnar copy was not written


@dataclass(frozen=True)
class FeatureSpec:
    dataset: str
    label: Label
    features: tuple[Feature, ...]
    data: DataFiles = field(default_factory=DataFiles)
    counts: Counts = field(default_factory=Counts)
    split: Split = field(default_factory=Split)
    format_version: int = FORMAT_VERSION
    # The train split's time windows (`recsys preprocess --windows N`), in time order; () when the
    # output is not windowed. The vocabularies and statistics cover every window together.
    windows: tuple[Window, ...] = ()
    eval_window: Span | None = None  # the eval split's interval, after every train window
    # Directory the spec was loaded from; relative paths resolve against it. Not serialised.
    root: str = field(default="", compare=False, metadata={"serialize": False})

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"no feature {name!r}; features: {[f.name for f in self.features]}")

    def by_kind(self, *kinds: Kind) -> list[Feature]:
        return [f for f in self.features if f.kind in kinds]

    def path(self, relative: str) -> str:
        return relative if os.path.isabs(relative) else os.path.join(self.root, relative)

    def select_windows(self, windows: tuple[int, ...]) -> tuple[Window, ...]:
        """The windows ``windows`` names (every window for (), none on an unwindowed spec); a window the
        spec does not have is a ValueError naming the ones it has."""
        if not windows:
            return self.windows
        have = [w.index for w in self.windows]
        missing = [i for i in windows if i not in have]
        if missing:
            where = f"{self.path(SPEC_FILENAME)}"
            available = (f"windows {have}" if have else
                         "no windows (it was written without `recsys preprocess --windows N`)")
            raise ValueError(f"data.windows={list(windows)}: {where} has no window "
                             f"{', '.join(map(str, missing))}; it has {available}")
        return tuple(w for w in self.windows if w.index in windows)

    def train_patterns(self, windows: tuple[int, ...] = ()) -> list[str]:
        """The train shards' patterns of the selected windows, in window order (all when ())."""
        chosen = self.select_windows(windows)
        return [w.train_pattern for w in chosen] if chosen else [self.data.train_pattern]

    def columnar_patterns(self, windows: tuple[int, ...] = ()) -> list[str]:
        """The columnar copy's patterns of the selected windows ([] when the spec has no copy)."""
        if not self.data.columnar_pattern:
            return []
        chosen = self.select_windows(windows)
        return [w.columnar_pattern for w in chosen] if chosen else [self.data.columnar_pattern]

    def to_dict(self) -> dict[str, Any]:
        d = typed.to_dict(self)
        if not self.windows:  # an unwindowed spec stays byte for byte what it was before windows
            d.pop("windows")
            d.pop("eval_window")
        return d

    def save(self, directory: str) -> str:
        return atomic.write_json(os.path.join(directory, SPEC_FILENAME), self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any], root: str = "") -> FeatureSpec:
        """The spec from its JSON mapping (keys an older writer did not know take their defaults)."""
        if not isinstance(d, dict):
            raise typed.TypedError(f"a feature spec is a JSON object, got {type(d).__name__}")
        version = d.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(f"feature spec format_version {version} is not supported "
                             f"(this build reads {FORMAT_VERSION})")
        return typed.from_dict(cls, {**d, "root": root}, what="feature spec")

def load(path: str) -> FeatureSpec:
    """Load a spec from ``feature_spec.json`` or from the directory that holds it."""
    if os.path.isdir(path):
        path = os.path.join(path, SPEC_FILENAME)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"feature spec not found: {path} (run `recsys preprocess` first; it writes {SPEC_FILENAME})"
        )
    with open(path, encoding="utf-8") as fh:
        try:
            d = json.load(fh)
        except json.JSONDecodeError as err:
            raise ValueError(f"feature spec {path} is not valid JSON: {err}") from err
    try:
        return FeatureSpec.from_dict(d, root=os.path.dirname(os.path.abspath(path)))
    except typed.TypedError as err:
        raise ValueError(f"feature spec {path} is malformed: {err}") from err
