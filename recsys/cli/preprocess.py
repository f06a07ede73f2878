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
Flags are generated from :class:`recsys.settings.preprocess.PreprocessSettings`; a config file's
``preprocess:`` section and ``--set preprocess.KEY=VALUE`` set the same fields.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from absl import flags

from pipelines.config import PreprocessConfig
from recsys.cli import exits
from recsys.cli.flagging import Flags
from recsys.settings.preprocess import PreprocessSettings

FLAGS = flags.FLAGS
SETTINGS = Flags(PreprocessSettings, "preprocess")

# `recsys preprocess --help` lists the key flags of sys.argv[0] (the `recsys` script): make ours key.
for _flag in FLAGS.get_key_flags_for_module(__name__):
    FLAGS.register_key_flag_for_module(sys.argv[0], _flag)


def preprocess_config(s: PreprocessSettings) -> PreprocessConfig:
    """Settings -> the pipeline's PreprocessConfig with the source's schema (errors: plain ValueErrors)."""
    from pipelines.config import SyntheticParams
    from pipelines.schema import Schema, SchemaError

    if not s.output:
        raise ValueError("--output is required")
    source = s.source
    eval_fraction = 0.1 if s.eval_fraction is None else s.eval_fraction
    salt = s.salt or ""
    extra: dict[str, Any] = {}
    inputs = tuple(s.input)
    schema: Schema
    if source in ("criteo", "synthetic"):
        from pipelines.sources.criteo import criteo_schema

        schema = criteo_schema(eval_fraction, salt, name=source)
        if source == "synthetic":
            extra["synthetic"] = SyntheticParams(rows=s.rows, seed=s.seed, zipf=s.zipf,
                                                 cardinalities=s.cardinalities)
            inputs = ()
    elif source == "movielens":
        from pipelines.sources.movielens import movielens_schema

        if len(inputs) != 1:
            raise ValueError("--source=movielens needs --input=<ml-100k directory or its u.data>")
        path = inputs[0]
        directory = path if os.path.isdir(path) or path.endswith("/") else os.path.dirname(path)
        data = os.path.join(directory, "u.data") if directory == path else path
        schema = movielens_schema(s.label_rule, eval_fraction, salt, s.split, s.time_threshold)
        inputs, extra["movielens_dir"] = (data,), directory
    elif source == "csv":
        from pipelines.sources.csv import csv_schema

        schema = csv_schema(s.schema, s.eval_fraction, s.salt)
    else:  # pragma: no cover - the Literal type rejects it first
        from pipelines.sources import SOURCES

        raise SchemaError(f"unknown source {source!r}; valid: {', '.join(SOURCES)}")
    if source != "synthetic" and not inputs:
        raise ValueError(f"--source={source} needs --input")
    return PreprocessConfig(
        source=source, output=s.output, schema=schema, inputs=inputs,
        max_error_fraction=s.max_error_fraction, min_frequency=s.min_frequency,
        top_k=s.top_k, hash_threshold=s.hash_threshold, hash_buckets=s.hash_buckets,
        num_oov_buckets=s.num_oov_buckets, chunk_bytes=s.chunk_mb << 20,
        compression_level=s.compression_level,
        columnar_chunk_rows=s.columnar_chunk_rows, windows=s.windows, **extra,
    ).validate()  # fmt: skip


def beam_args(s: PreprocessSettings, passthrough: list[str]) -> list[str]:
    """Beam options: the runner settings, then everything after ``--`` verbatim."""
    args = [f"--runner={s.runner}"]
    if s.runner in ("DirectRunner", "direct", "FnApiRunner"):
        args += [
            f"--direct_num_workers={s.direct_num_workers}",
            f"--direct_running_mode={s.direct_running_mode}",
        ]
    return args + list(passthrough)


def main(argv: list[str]) -> None:
    """Run the pipeline and print per-stage counts, dead letters, elapsed time and rows/s."""
    from absl import logging as absl_logging

    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    from pipelines.failures import PipelineFailure, ReportedFailures
    from pipelines.pipeline import run
    from pipelines.schema import SchemaError

    passthrough = list(argv[1:])
    stray = [a for a in passthrough if not a.startswith("-")]
    if stray:
        exits.usage("preprocess", f"unexpected arguments {stray}; Beam options go after '--' and start "
                    "with '--'")
    settings = SETTINGS.load("preprocess")
    try:
        config = preprocess_config(settings)
    except (ValueError, SchemaError, FileNotFoundError) as err:  # the flags or the --schema file
        exits.usage("preprocess", err)
    absl_logging.info("preprocess %s -> %s", config.source, config.output)
    # The runner logs a failure the pipeline decided on (with Beam's traceback) before it raises it;
    # it is reported once, below, as one line.
    absl_logging.get_absl_handler().addFilter(ReportedFailures())
    try:
        summary = run(config, beam_args(settings, passthrough))
    except (FileNotFoundError, IsADirectoryError, SchemaError, PipelineFailure) as err:
        exits.fail("preprocess", err)
    print(summary.table())
    if summary.spec is None:
        exits.fail("preprocess", f"no feature spec at {config.output} (pipeline state {summary.state})")
    c = summary.spec.counts
    print(
        f"feature spec: {os.path.join(config.output, 'feature_spec.json')} "
        f"({len(summary.spec.features)} features); dead letters: {c.dead_lettered:,} "
        f"in {os.path.join(config.output, 'errors-*.jsonl')}"
    )
