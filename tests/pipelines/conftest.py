"""Fixtures for the pipeline tests: run a preprocessing config, read its shards back."""

from __future__ import annotations

import glob
import json
import os

import pytest


def _decode(example) -> dict:
    out = {}
    for name, feat in example.features.feature.items():
        kind = feat.WhichOneof("kind")
        if kind == "float_list":
            out[name] = list(feat.float_list.value)
        elif kind == "bytes_list":
            out[name] = [v.decode("utf-8") for v in feat.bytes_list.value]
        else:
            out[name] = list(feat.int64_list.value)
    return out


@pytest.fixture(scope="session")
def read_examples():
    """``read_examples(dir, split)`` -> list of {feature: values} parsed with tf.train.Example."""
    from recsys.compat import tf

    def read(directory, split: str = "train") -> list[dict]:
        files = sorted(glob.glob(os.path.join(str(directory), split, "part-*.tfrecord.gz")))
        assert files, f"no {split} shards in {directory}"
        rows = []
        for raw in tf.data.TFRecordDataset(files, compression_type="GZIP"):
            rows.append(_decode(tf.train.Example.FromString(raw.numpy())))
        return rows

    return read


@pytest.fixture(scope="session")
def read_errors():
    """``read_errors(dir)`` -> dead-letter records sorted by (file, line)."""

    def read(directory) -> list[dict]:
        recs = []
        for path in sorted(glob.glob(os.path.join(str(directory), "errors-*.jsonl"))):
            with open(path, encoding="utf-8") as fh:
                recs += [json.loads(line) for line in fh if line.strip()]
        return sorted(recs, key=lambda r: (r["file"], r["line"]))

    return read


@pytest.fixture(scope="session")
def run_config():
    """``run_config(config, *beam_args)`` -> RunSummary of a real DirectRunner (FnApiRunner) run."""
    from pipelines.pipeline import run

    def go(config, *beam_args):
        return run(config, list(beam_args))

    return go
