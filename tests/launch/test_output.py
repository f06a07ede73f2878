"""The supervisor's output: the workers' heartbeats summed up in one progress line, the rest echoed."""

from __future__ import annotations

from recsys.launch.output import Printer, is_repeat


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_heartbeats_progress_and_stop_acknowledgements_are_not_echoed():
    lines: list[str] = []
    echo = Printer(lines.append).worker_echo(everything=False)
    for text in ["recsys-heartbeat step=120 phase=train",
                 "step 1,200/20,000 (6%) - 35.2 steps/s - 8m54s left",
                 "recsys train: SIGINT received: stopping at the next step boundary and saving a backup",
                 "step 5000: auc: 0.7812 - loss: 0.4410", "recsys train: stopped at step 12 of 40 (SIGINT)"]:
        echo(f"[worker-0] {text}")
    assert lines == ["[worker-0] step 5000: auc: 0.7812 - loss: 0.4410\n",
                     "[worker-0] recsys train: stopped at step 12 of 40 (SIGINT)\n"]
    everything: list[str] = []
    Printer(everything.append).worker_echo(everything=True)("[worker-1] recsys-heartbeat step=3 phase=begin")
    assert everything == ["[worker-1] recsys-heartbeat step=3 phase=begin\n"]
    assert not is_repeat("stepping 3/4 (1%)")


def test_one_progress_line_at_the_interval_from_the_resume_step():
    lines: list[str] = []
    clock = Clock()
    printer = Printer(lines.append, clock=clock)
    assert not printer.progress(10)  # no progress line before the chief's first heartbeat
    printer.start_progress(total=1000, step=200, every_seconds=30)
    for step in range(210, 420, 10):  # 10 steps every 5 s: 2 steps/s
        clock.now += 5
        assert printer.progress(step)
    # 30 s after the start (step 260) and 30 s later (step 320); the rate counts from step 200
    assert lines == ["[submit] step 260/1,000 (26%) - 2 steps/s - 6m10s left\n",
                     "[submit] step 320/1,000 (32%) - 2 steps/s - 5m40s left\n",
                     "[submit] step 380/1,000 (38%) - 2 steps/s - 5m10s left\n"]
    printer.end_progress()
    assert not printer.progress(420)
