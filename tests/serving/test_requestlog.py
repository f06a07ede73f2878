"""The request log appends across restarts; version directories are ASCII digits only."""

from __future__ import annotations

import os

import numpy as np
from tensorflow_serving.apis import model_pb2

from serving.requestlog import RequestLogger
from serving.source import versions_on_disk
from serving.tools.client import read_request_log


def _log(path: str, values: list[float]) -> None:
    logger = RequestLogger(path, sample_rate=1.0, seed=0)
    for v in values:
        logger.offer(model_pb2.ModelSpec(name="tiny"), "serving_default", {"x1": np.array([v], np.float32)})
    logger.flush()
    logger.close()


def test_a_restarted_request_log_appends(tmp_path):
    path = str(tmp_path / "requests.tfrecord")
    _log(path, [1.0, 2.0])
    _log(path, [3.0])  # the server restarted with the same --request_log_file
    got = [float(r["x1"][0]) for r in read_request_log(path)]
    assert got == [1.0, 2.0, 3.0]


def test_version_directories_must_be_ascii_digits(tmp_path):
    for name in ("1", "12", "\u0661\u0662", "\u00b2", "x3"):  # Arabic-Indic 12, superscript 2
        os.makedirs(tmp_path / name)
    assert sorted(versions_on_disk(str(tmp_path)) or {}) == [1, 12]
