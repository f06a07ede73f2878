"""Build and run the preprocessing pipeline: chunks -> shards + dead letter + feature spec.

```
Create(chunks) -> Reshuffle -> ProcessChunk ──main──▶ ChunkInfo ─┬─▶ line offsets ─┐
                                 │ errors ─────────────────────────┼────────────────┴▶ errors-*.jsonl
                                 │ stats ──▶ CombinePerKey(merge) ─┴───────────────────▶ WriteSpec
```
"""

from __future__ import annotations

import functools
import logging
import posixpath
import time
from dataclasses import dataclass, field

import apache_beam as beam

from pipelines import failures, windows
from pipelines import feature_spec as fs
from pipelines.chunks import Chunk, expand_inputs, plan_chunks
from pipelines.config import PreprocessConfig
from pipelines.dofns import (
    STATS,
    ChunkInfo,
    ProcessChunk,
    SampleTimes,
    WriteSpec,
    error_record,
    first_lines,
    pack_stat,
    time_threshold,
)
from pipelines.schema import SchemaError
from pipelines.stats import merge_accs

log = logging.getLogger(__name__)
DIRECT_RUNNERS = ("DirectRunner", "direct", "FnApiRunner")


def plan(config: PreprocessConfig) -> list[Chunk]:
    """Chunks of work; checks inputs exist and header lines match the schema."""
    if config.source == "synthetic":
        p = config.synthetic
        assert p is not None  # PreprocessConfig.validate() requires it for this source
        step = max(1, p.chunk_rows)
        label = f"synthetic(seed={p.seed})"
        return [Chunk(i, label, s, min(s + step, p.rows), size=p.rows, total=p.rows)
                for i, s in enumerate(range(0, p.rows, step))]
    files = expand_inputs(list(config.inputs))
    for path, size in files:
        if size == 0:
            log.warning("input file %s is empty (0 rows)", path)
    if config.schema.header:
        _check_headers(config, [p for p, s in files if s > 0])
    return plan_chunks(files, config.chunk_bytes, config.schema.header)


def _check_headers(config: PreprocessConfig, paths: list[str]) -> None:
    from apache_beam.io.filesystems import FileSystems

    schema = config.schema
    want = schema.column_names
    for path in paths:
        with FileSystems.open(path) as fh:
            first = fh.readline().rstrip(b"\r\n").decode(schema.encoding, errors="replace")
        got = first.split(schema.delimiter)
        if [g.strip() for g in got] != want:
            raise SchemaError(
                f"header of {path} does not match schema {schema.name!r}:\n  file:   {got}\n"
                f"  schema: {want}\n(list the columns in the schema in file order)"
            )


def clean_output(output: str) -> None:
    """Delete what a previous run left (shards, vocabularies, errors, spec) so globs stay exact."""
    from apache_beam.io.filesystems import FileSystems

    patterns = [
        posixpath.join(output, "train", "part-*"),
        posixpath.join(output, "eval", "part-*"),
        posixpath.join(output, "train_columnar", "part-*"),
        posixpath.join(output, "vocab", "*.txt"),
        posixpath.join(output, "errors-*.jsonl"),
        posixpath.join(output, fs.SPEC_FILENAME),
        posixpath.join(output, failures.FAILURE_FILE),
        *windows.clean_patterns(output),
    ]
    for result in FileSystems.match(patterns):
        paths = [m.path for m in result.metadata_list]
        if paths:
            FileSystems.delete(paths)


def build(p: beam.Pipeline, config: PreprocessConfig, chunks: list[Chunk]) -> None:
    """Add the preprocessing transforms to ``p``."""
    n = len(chunks)
    config = windows.prepare(config)
    chunk_pc = p | "Chunks" >> beam.Create(chunks) | "Distribute" >> beam.Reshuffle()
    side = {}
    split = config.schema.split
    if config.windows and windows.time_column(config):  # the eval threshold and window boundaries
        side["cuts"] = beam.pvalue.AsSingleton(
            chunk_pc
            | "SampleTimes" >> beam.ParDo(SampleTimes(config))
            | "AllSamples" >> beam.combiners.ToList()
            | "WindowCuts" >> beam.Map(windows.sampled_cuts, config)
        )
    elif split.method == "time" and split.time_threshold is None:
        if config.source == "synthetic":
            raise SchemaError("the synthetic source has no time column; use a hash split")
        side["time_threshold"] = beam.pvalue.AsSingleton(
            chunk_pc
            | "SampleTimes" >> beam.ParDo(SampleTimes(config))
            | "AllSamples" >> beam.combiners.ToList()
            | "TimeThreshold" >> beam.Map(time_threshold, split.eval_fraction, config.output)
        )
    results = chunk_pc | "Process" >> beam.ParDo(ProcessChunk(config, n), **side).with_outputs(
        "errors", STATS, main="info"
    )
    infos = results.info
    # Side inputs are single lists built with ToList: BundleBasedDirectRunner can hand an empty
    # AsList() of a multi-output ParDo's main output to a DoFn (seen with Beam 2.77).
    all_infos = infos | "AllChunks" >> beam.combiners.ToList()
    firsts = all_infos | "FirstLines" >> beam.Map(first_lines)
    written = (
        results.errors
        | "ErrorJson" >> beam.Map(error_record, beam.pvalue.AsSingleton(firsts))
        | "DeadLetter"
        >> beam.io.WriteToText(
            posixpath.join(config.output, "errors"),
            file_name_suffix=".jsonl",
            num_shards=1,
            shard_name_template="-SSSSS-of-NNNNN",
        )
    )
    merge = functools.partial(merge_accs, limit=config.hash_threshold)
    # Value counts merge in the lifted combine too: a worker's running counts are bounded by the distinct
    # values it saw. Merging them after a GroupByKey instead (tried, December 2026) keeps every chunk's
    # counts in the runner until the merge, which grows with the number of chunks without bound.
    numeric_and_counts = results[STATS] | "MergeStats" >> beam.CombinePerKey(merge)
    # Each feature's merged statistics reach WriteSpec pickled (one bytes object a feature): Beam's state
    # cache sizes a side input object by object, which took seconds for the value counts at 10^6 rows.
    stats = numeric_and_counts | "PackStats" >> beam.Map(pack_stat)
    _ = (
        p
        | "Once" >> beam.Create([None])
        | "WriteSpec"
        >> beam.ParDo(
            WriteSpec(config, n),
            beam.pvalue.AsSingleton(all_infos),
            beam.pvalue.AsList(stats),
            beam.pvalue.AsSingleton(written | "WrittenFiles" >> beam.combiners.ToList()),
            **side,
        )
    )


def make_pipeline(beam_args: list[str]) -> beam.Pipeline:
    """A Pipeline from Beam command-line options; the Direct runner means the Python FnApiRunner.

    ``DirectRunner`` in Beam 2.77 first tries Prism, which downloads a binary (impossible offline),
    so it is replaced by the FnApiRunner, which honours --direct_num_workers and
    --direct_running_mode. Every other runner and option passes through unchanged.
    """
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    options = PipelineOptions(beam_args)
    runner_name = options.view_as(StandardOptions).runner or "DirectRunner"
    if runner_name in DIRECT_RUNNERS:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return beam.Pipeline(runner=FnApiRunner(), options=options)
    return beam.Pipeline(options=options)


@dataclass
class RunSummary:
    """What a run did, for people (counts, timings) and for callers (the spec)."""

    spec: fs.FeatureSpec | None
    seconds: float
    stage_counts: dict[str, int] = field(default_factory=dict)
    state: str = ""

    @property
    def rows_per_s(self) -> float:
        read = self.spec.counts.read if self.spec else self.stage_counts.get("1_lines_read", 0)
        return read / self.seconds if self.seconds > 0 else 0.0

    def table(self) -> str:
        lines = ["stage                          count"]
        for name, value in sorted(self.stage_counts.items()):
            lines.append(f"  {name:<28} {value:>10,}")
        if self.spec:
            c = self.spec.counts
            lines.append(
                f"read={c.read:,} = train {c.written_train:,} + eval {c.written_eval:,} "
                f"+ dead-lettered {c.dead_lettered:,}"
            )
            if self.spec.windows:
                parts = " · ".join(f"w{w.index} {w.rows:,}" for w in self.spec.windows)
                lines.append(f"time windows ({self.spec.windows[0].order}): {parts}; eval after them")
        lines.append(f"elapsed {self.seconds:.1f} s, {self.rows_per_s:,.0f} rows/s")
        return "\n".join(lines)


def _stage_counts(result) -> dict[str, int]:
    from apache_beam.metrics.metric import MetricsFilter

    try:
        counters = result.metrics().query(MetricsFilter().with_namespace("preprocess"))["counters"]
    except Exception:  # noqa: BLE001 - some runners do not report metrics, in ways of their own
        return {}
    out: dict[str, int] = {}
    for c in counters:
        value = c.committed if c.committed is not None else c.attempted
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(value or 0)
    return out


def run(config: PreprocessConfig, beam_args: list[str] | None = None) -> RunSummary:
    """Plan, clean the output, run the pipeline to completion and return the summary."""
    config.validate()
    start = time.time()
    chunks = plan(config)
    clean_output(config.output)
    log.info("preprocess: %d chunk(s) from %s", len(chunks), list(config.inputs) or config.source)
    p = make_pipeline(list(beam_args or []))
    build(p, config, chunks)
    try:
        result = p.run()
        state = result.wait_until_finish()
    except Exception as err:  # the runner's wrapper of a DoFn error; the typed one is in the status file
        failure = failures.recorded(config.output)
        if failure is None:
            raise
        raise failure from err
    seconds = time.time() - start
    spec = None
    try:
        spec = _load_spec(config.output)
    except FileNotFoundError:
        pass
    return RunSummary(spec, seconds, _stage_counts(result), str(state))


def _load_spec(output: str) -> fs.FeatureSpec:
    import json

    from apache_beam.io.filesystems import FileSystems

    path = posixpath.join(output, fs.SPEC_FILENAME)
    if not FileSystems.exists(path):
        raise FileNotFoundError(path)
    with FileSystems.open(path) as fh:
        return fs.FeatureSpec.from_dict(json.loads(fh.read().decode("utf-8")), root=output)


__all__ = ["ChunkInfo", "RunSummary", "build", "clean_output", "make_pipeline", "plan", "run"]
