"""``recsys preprocess``: raw logs -> gzip TFRecord shards + vocabularies + ``feature_spec.json``.

Examples::

    recsys preprocess --source=synthetic --rows=100000 --output=/tmp/prep
    recsys preprocess --source=criteo --input='/data/criteo/day_*.txt' --output=/tmp/criteo
    recsys preprocess --source=movielens --input=../shared/data/ml-100k --output=/tmp/ml
    recsys preprocess --source=csv --schema=configs/schemas/toy.yaml --input=toy.csv --output=/tmp/toy
    recsys preprocess --source=criteo --input=gs://b/raw/*.txt --output=gs://b/prep \\
        --runner=DataflowRunner -- --project=P --region=us-central1 --temp_location=gs://b/tmp \\
        --setup_file=./pyproject.toml

Beam options: ``--runner``, ``--direct_num_workers`` and ``--direct_running_mode`` are flags here;
any other Beam option goes after a ``--`` separator and is handed to ``PipelineOptions`` unchanged.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from absl import flags

from pipelines.sources import SOURCES

FLAGS = flags.FLAGS

flags.DEFINE_enum("source", "synthetic", list(SOURCES), "Input layout.")
flags.DEFINE_list(
    "input",
    [],
    "Input files or globs, comma-separated (movielens: the ml-100k "
    "directory or its u.data). Local paths or any Beam filesystem (gs://, hdfs://).",
)
flags.DEFINE_string("output", "", "Output directory (local or gs://...).")
flags.DEFINE_string("schema", "", "YAML schema for --source=csv (see configs/schemas/).")
flags.DEFINE_integer("rows", 100_000, "synthetic: number of rows to generate.")
flags.DEFINE_integer("seed", 0, "synthetic: generator seed.")
flags.DEFINE_float("zipf", 1.1, "synthetic: Zipf exponent of the categorical values.")
flags.DEFINE_list("cardinalities", [], "synthetic: 26 cardinalities C1..C26 (default: built-in).")
flags.DEFINE_float(
    "eval_fraction",
    None,
    "Fraction of rows (by key hash) in eval; default 0.1, or the schema's value for --source=csv.",
)
flags.DEFINE_string("salt", None, "Salt of the split hash (change it to draw another split).")
flags.DEFINE_string("label_rule", ">= 4", "movielens: rating rule that makes a positive label.")
flags.DEFINE_enum("split", "hash", ["hash", "time"], "movielens: split by user_id hash or time.")
flags.DEFINE_float(
    "time_threshold",
    None,
    "movielens --split=time: timestamps >= this are eval (default: the latest --eval_fraction of rows).",
)
flags.DEFINE_float(
    "max_error_fraction", 0.01, "Fail the run when more than this fraction of rows is dead-lettered."
)
flags.DEFINE_integer("min_frequency", 1, "Vocabulary: minimum count in the training split.")
flags.DEFINE_integer("top_k", 100_000, "Vocabulary: keep at most this many values (0 = no cap).")
flags.DEFINE_integer(
    "hash_threshold",
    1_000_000,
    "Hash a categorical feature instead of a "
    "vocabulary when it has more distinct training values (0 = never).",
)
flags.DEFINE_integer("hash_buckets", 0, "Hash buckets of hashed features (0 = hash_threshold).")
flags.DEFINE_integer("num_oov_buckets", 1, "OOV buckets of vocabulary features.")
flags.DEFINE_integer(
    "chunk_mb",
    32,
    "Input is processed in byte-range chunks of this size; one train and one eval shard per chunk.",
)
flags.DEFINE_integer("compression_level", 1, "gzip level of the TFRecord shards (1-9).")
flags.DEFINE_string(
    "runner",
    "DirectRunner",
    "Beam runner (DirectRunner = local FnApiRunner; "
    "DataflowRunner, FlinkRunner, SparkRunner, ... pass through).",
)
flags.DEFINE_integer("direct_num_workers", 1, "DirectRunner: parallel workers (0 = all cores).")
flags.DEFINE_enum(
    "direct_running_mode",
    "in_memory",
    ["in_memory", "multi_threading", "multi_processing"],
    "DirectRunner: how workers run (multi_processing uses every core).",
)

# `recsys preprocess --help` lists the key flags of sys.argv[0] (the `recsys` script): make ours key.
for _flag in FLAGS.get_key_flags_for_module(__name__):
    FLAGS.register_key_flag_for_module(sys.argv[0], _flag)


def _config():
    """Build the PreprocessConfig from the flags (errors are plain ValueErrors for people)."""
    from pipelines.config import PreprocessConfig, SyntheticParams
    from pipelines.schema import SchemaError

    if not FLAGS.output:
        raise ValueError("--output is required")
    source = FLAGS.source
    eval_fraction = 0.1 if FLAGS.eval_fraction is None else FLAGS.eval_fraction
    salt = FLAGS.salt or ""
    extra: dict[str, Any] = {}
    inputs = tuple(FLAGS.input)
    if source in ("criteo", "synthetic"):
        from pipelines.sources.criteo import criteo_schema

        schema = criteo_schema(eval_fraction, salt, name=source)
        if source == "synthetic":
            extra["synthetic"] = SyntheticParams(
                rows=FLAGS.rows, seed=FLAGS.seed, zipf=FLAGS.zipf,
                cardinalities=tuple(int(c) for c in FLAGS.cardinalities),
            )  # fmt: skip
            inputs = ()
    elif source == "movielens":
        from pipelines.sources.movielens import movielens_schema

        if len(inputs) != 1:
            raise ValueError("--source=movielens needs --input=<ml-100k directory or its u.data>")
        path = inputs[0]
        directory = path if os.path.isdir(path) or path.endswith("/") else os.path.dirname(path)
        data = os.path.join(directory, "u.data") if directory == path else path
        schema = movielens_schema(FLAGS.label_rule, eval_fraction, salt, FLAGS.split, FLAGS.time_threshold)
        inputs, extra["movielens_dir"] = (data,), directory
    elif source == "csv":
        from pipelines.sources.csv import csv_schema

        schema = csv_schema(FLAGS.schema, FLAGS.eval_fraction, FLAGS.salt)
    else:  # pragma: no cover - flags.DEFINE_enum rejects it first
        raise SchemaError(f"unknown source {source!r}; valid: {', '.join(SOURCES)}")
    if source != "synthetic" and not inputs:
        raise ValueError(f"--source={source} needs --input")
    return PreprocessConfig(
        source=source, output=FLAGS.output, schema=schema, inputs=inputs,
        max_error_fraction=FLAGS.max_error_fraction, min_frequency=FLAGS.min_frequency,
        top_k=FLAGS.top_k, hash_threshold=FLAGS.hash_threshold, hash_buckets=FLAGS.hash_buckets,
        num_oov_buckets=FLAGS.num_oov_buckets, chunk_bytes=FLAGS.chunk_mb << 20,
        compression_level=FLAGS.compression_level, **extra,
    ).validate()  # fmt: skip


def beam_args(passthrough: list[str]) -> list[str]:
    """Beam options: the runner flags defined here, then everything after ``--`` verbatim."""
    args = [f"--runner={FLAGS.runner}"]
    if FLAGS.runner in ("DirectRunner", "direct", "FnApiRunner"):
        args += [
            f"--direct_num_workers={FLAGS.direct_num_workers}",
            f"--direct_running_mode={FLAGS.direct_running_mode}",
        ]
    return args + list(passthrough)


def main(argv: list[str]) -> None:
    """Run the pipeline and print per-stage counts, dead letters, elapsed time and rows/s."""
    from absl import logging as absl_logging

    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    from pipelines.failures import PipelineFailure
    from pipelines.pipeline import run
    from pipelines.schema import SchemaError

    passthrough = list(argv[1:])
    stray = [a for a in passthrough if not a.startswith("-")]
    if stray:
        raise SystemExit(
            f"recsys preprocess: unexpected arguments {stray}; Beam options go after '--' and start with '--'"
        )
    try:
        config = _config()
    except (ValueError, SchemaError, FileNotFoundError) as err:
        raise SystemExit(f"recsys preprocess: {err}") from None
    absl_logging.info("preprocess %s -> %s", config.source, config.output)
    try:
        summary = run(config, beam_args(passthrough))
    except (FileNotFoundError, IsADirectoryError, SchemaError, PipelineFailure) as err:
        raise SystemExit(f"recsys preprocess: {err}") from None
    print(summary.table())
    if summary.spec is None:
        print(f"no feature spec at {config.output} (pipeline state {summary.state})", file=sys.stderr)
        raise SystemExit(1)
    c = summary.spec.counts
    print(
        f"feature spec: {os.path.join(config.output, 'feature_spec.json')} "
        f"({len(summary.spec.features)} features); dead letters: {c.dead_lettered:,} "
        f"in {os.path.join(config.output, 'errors-*.jsonl')}"
    )
