"""The progress line: what it says, how often, and that it ends cleanly on a terminal."""

from __future__ import annotations

import io

from recsys.train.controller import Controller
from recsys.train.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_at_the_interval_with_rate_and_time_left():
    clock, out = Clock(), io.StringIO()
    progress = Progress(total=1000, examples_per_step=256, stream=out, clock=clock)
    assert progress.every_seconds == 30.0  # not a terminal: a line every 30 s

    def chunk(n: int) -> None:
        clock.now += n * 0.5  # 2 steps/s

    Controller(chunk, total=1000, chunk=10, actions=[progress]).run(200, 300)
    lines = out.getvalue().splitlines()
    # 100 steps in 50 s: a line after 30 s (step 260) and none at 50 s (20 s after it)
    assert lines == ["step 260/1,000 (26%) - 2 steps/s, 512 ex/s - 6m10s left"]


def test_a_terminal_line_is_rewritten_in_place_and_cleared():
    clock, out = Clock(), Terminal()
    progress = Progress(total=50, examples_per_step=8, stream=out, clock=clock)
    assert progress.every_seconds == 1.0

    def chunk(n: int) -> None:
        clock.now += n * 0.25

    Controller(chunk, total=50, chunk=4, actions=[progress]).run(0, 50)
    text = out.getvalue()
    assert "\n" not in text and text.endswith("\r\x1b[K")  # ended cleanly for the next line
    shown = [part.removesuffix("\x1b[K") for part in text.split("\r") if part.strip("\x1b[K")]
    assert shown[0] == "step 4/50 (8%) - 4 steps/s, 32 ex/s - 12s left"
    assert shown[-1] == "step 48/50 (96%) - 4 steps/s, 32 ex/s - 0s left"
    assert len(shown) == 12  # one per second of the 12.5 s run
