"""Preprocessing's progress lines: none for a short run; in a long one at most one per interval,
within a chunk and for the job."""

from __future__ import annotations

import logging

from pipelines.progress import ChunkProgress, duration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_short_run_prints_nothing(caplog):
    clock = Clock()
    progress = ChunkProgress(total_chunks=2, every=10, clock=clock)
    with caplog.at_level(logging.INFO, logger="pipelines.progress"):
        for _ in range(2):
            start = progress.start_chunk()
            for done in (8192, 16384, 20000):
                clock.now += 1.0
                progress.in_chunk(1, done, 20000, start)
            progress.chunk_done(20000)
    assert caplog.messages == []


def test_a_long_run_reports_within_chunks_and_after_them(caplog):
    clock = Clock()
    progress = ChunkProgress(total_chunks=4, every=10, clock=clock)
    with caplog.at_level(logging.INFO, logger="pipelines.progress"):
        for number in range(1, 5):
            start = progress.start_chunk()
            for done in range(10_000, 100_001, 10_000):  # 10,000 lines per 1.5 s: 15 s a chunk
                clock.now += 1.5
                progress.in_chunk(number, done, 100_000, start)
            progress.chunk_done(100_000)
    assert caplog.messages == [
        "chunk 1/4: 70,000 of 100,000 lines (70%), 6,667 rows/s",  # 10.5 s in
        "preprocess: 1/4 chunks done (25%), 6,667 rows/s, ~45s left",  # 15 s in
        "chunk 2/4: 70,000 of 100,000 lines (70%), 6,667 rows/s",
        "preprocess: 2/4 chunks done (50%), 6,667 rows/s, ~30s left",
        "chunk 3/4: 70,000 of 100,000 lines (70%), 6,667 rows/s",
        "preprocess: 3/4 chunks done (75%), 6,667 rows/s, ~15s left",
        "chunk 4/4: 70,000 of 100,000 lines (70%), 6,667 rows/s",  # the last: the summary follows
    ]


def test_durations_read_naturally():
    assert [duration(s) for s in (0.4, 42, 534, 7500)] == ["0s", "42s", "8m54s", "2h05m"]
