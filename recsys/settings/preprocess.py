"""``recsys preprocess`` settings, one field per flag (``preprocess:`` in a config file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipelines.typed import setting

# pipelines.sources.SOURCES (a test keeps them equal).
Source = Literal["criteo", "movielens", "csv", "synthetic"]
RunningMode = Literal["in_memory", "multi_threading", "multi_processing"]


@dataclass(frozen=True)
class PreprocessSettings:
    """What to read, where to write, vocabulary and shard choices, and the Beam runner."""

    source: Source = setting("synthetic", "Input layout.")
    input: tuple[str, ...] = setting((), "Input files or globs, comma-separated (movielens: the ml-100k "
                                     "directory or its u.data). Local paths or any Beam filesystem (gs://, "
                                     "hdfs://).")
    output: str = setting("", "Output directory (local or gs://...).")
    schema: str = setting("", "YAML schema for --source=csv (see configs/schemas/).")
    rows: int = setting(100_000, "synthetic: number of rows to generate.")
    seed: int = setting(0, "synthetic: generator seed.")
    zipf: float = setting(1.1, "synthetic: Zipf exponent of the categorical values.")
    cardinalities: tuple[int, ...] = setting((), "synthetic: 26 cardinalities C1..C26 (default: built-in).")
    eval_fraction: float | None = setting(None, "Fraction of rows (by key hash) in eval; default 0.1, or the "
                                          "schema's value for --source=csv.")
    salt: str | None = setting(None, "Salt of the split hash (change it to draw another split).")
    label_rule: str = setting(">= 4", "movielens: rating rule that makes a positive label.")
    split: Literal["hash", "time"] = setting("hash", "movielens: split by user_id hash or time.")
    time_threshold: float | None = setting(None, "movielens --split=time: timestamps >= this are eval "
                                           "(default: the latest --eval_fraction of rows).")
    max_error_fraction: float = setting(0.01, "Fail the run when more than this fraction of rows is "
                                        "dead-lettered.")
    min_frequency: int = setting(1, "Vocabulary: minimum count in the training split.")
    top_k: int = setting(100_000, "Vocabulary: keep at most this many values (0 = no cap).")
    hash_threshold: int = setting(1_000_000, "Hash a categorical feature instead of a vocabulary when it has "
                                  "more distinct training values (0 = never).")
    hash_buckets: int = setting(0, "Hash buckets of hashed features (0 = hash_threshold).")
    num_oov_buckets: int = setting(1, "OOV buckets of vocabulary features.")
    chunk_mb: int = setting(32, "Input is processed in byte-range chunks of this size; one train and one "
                            "eval shard per chunk.")
    compression_level: int = setting(1, "gzip level of the TFRecord shards (1-9).")
    columnar_chunk_rows: int = setting(1024, "Rows per chunk of the columnar training copy of the train "
                                       "split (parsed once per chunk by the trainer); 0: tf.Example only.")
    windows: int = setting(0, "Cut the train split into this many consecutive time windows (>= 2; the eval "
                           "split is then the latest --eval_fraction of rows): MovieLens by timestamp, a "
                           "schema by its time column, Criteo and synthetic by row order. 0: no windows.")
    runner: str = setting("DirectRunner", "Beam runner (DirectRunner = local FnApiRunner; DataflowRunner, "
                          "FlinkRunner, SparkRunner, ... pass through).")
    direct_num_workers: int = setting(1, "DirectRunner: parallel workers (0 = all cores).")
    direct_running_mode: RunningMode = setting("in_memory", "DirectRunner: how workers run (multi_processing "
                                               "uses every core).")

    def __post_init__(self) -> None:
        if not 1 <= self.compression_level <= 9:
            raise ValueError(f"compression_level must be in [1, 9], got {self.compression_level}")
        if self.columnar_chunk_rows < 0:
            raise ValueError(f"columnar_chunk_rows must be >= 0, got {self.columnar_chunk_rows}")
        if self.windows < 0 or self.windows == 1:
            raise ValueError(f"windows must be 0 (no windows) or >= 2, got {self.windows}")
        if self.chunk_mb < 1:
            raise ValueError(f"chunk_mb must be >= 1, got {self.chunk_mb}")
        if self.direct_num_workers < 0:
            raise ValueError(f"direct_num_workers must be >= 0, got {self.direct_num_workers}")
