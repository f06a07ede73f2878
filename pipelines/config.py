"""The preprocessing settings: one picklable value handed to every DoFn (no global flags)."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.schema import Schema


@dataclass(frozen=True)
class SyntheticParams:
    """Parameters of the built-in Criteo-layout generator."""

    rows: int = 100_000
    seed: int = 0
    cardinalities: tuple[int, ...] = ()  # empty: the generator's defaults
    zipf: float = 1.1
    chunk_rows: int = 100_000


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything one run needs; built by the CLI (or a test) and passed to ``build_pipeline``."""

    source: str  # criteo | movielens | csv | synthetic
    output: str
    schema: Schema
    inputs: tuple[str, ...] = ()
    movielens_dir: str = ""  # directory holding u.user / u.item (movielens only)
    synthetic: SyntheticParams | None = None
    max_error_fraction: float = 0.01
    min_frequency: int = 1
    top_k: int = 100_000
    hash_threshold: int = 1_000_000  # more distinct training values than this -> hashing
    hash_buckets: int = 0  # 0: same as hash_threshold
    num_oov_buckets: int = 1
    chunk_bytes: int = 32 << 20
    batch_lines: int = 8192
    compression_level: int = 1  # gzip level of the shards (1 is ~3x faster than 6, ~10% larger)
    # Rows per chunk of the columnar training copy of the train split (pipelines/columnar.py), read by
    # the trainer instead of parsing one tf.Example per row. 0: do not write it.
    columnar_chunk_rows: int = 1024
    # Consecutive time windows of the train split (pipelines/windows.py); 0: one train split, as before.
    windows: int = 0

    def validate(self) -> PreprocessConfig:
        if not 0.0 <= self.max_error_fraction <= 1.0:
            raise ValueError(f"max_error_fraction must be in [0, 1], got {self.max_error_fraction}")
        if self.min_frequency < 1:
            raise ValueError(f"min_frequency must be >= 1, got {self.min_frequency}")
        if self.top_k < 0 or self.hash_threshold < 0 or self.hash_buckets < 0:
            raise ValueError("top_k, hash_threshold and hash_buckets must be >= 0")
        if self.num_oov_buckets < 1:
            raise ValueError(f"num_oov_buckets must be >= 1, got {self.num_oov_buckets}")
        if self.columnar_chunk_rows < 0:
            raise ValueError(f"columnar_chunk_rows must be >= 0, got {self.columnar_chunk_rows}")
        if self.windows < 0 or self.windows == 1:
            raise ValueError(f"windows must be 0 (no windows) or >= 2, got {self.windows}")
        if self.chunk_bytes < 1024 or self.batch_lines < 1:
            raise ValueError("chunk_bytes must be >= 1024 and batch_lines >= 1")
        if self.source == "synthetic":
            if self.synthetic is None or self.synthetic.rows < 1:
                raise ValueError("the synthetic source needs rows >= 1")
            cards = self.synthetic.cardinalities
            if cards and (len(cards) != 26 or min(cards) < 1):
                raise ValueError(f"--cardinalities needs 26 values >= 1 (C1..C26), got {list(cards)}")
        if self.source != "synthetic" and not self.inputs:
            raise ValueError(f"--source={self.source} needs --input")
        return self
