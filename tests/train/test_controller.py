"""The controller's schedule: chunk boundaries at every action's interval, due actions in order."""

from __future__ import annotations

from typing import Any

from recsys.train.actions import Heartbeat, Saves
from recsys.train.controller import Action, Controller


class Recorder(Action):
    """Records begin, every due call (with the chunk's metrics) and end."""

    def __init__(self, name: str, every: int, log: list[tuple[str, str, int]]) -> None:
        self.name, self.every, self.log = name, every, log

    def begin(self, step: int) -> None:
        self.log.append((self.name, "begin", step))

    def __call__(self, step: int, metrics: Any) -> None:
        assert metrics == ("chunk ending at", step)
        self.log.append((self.name, "call", step))

    def end(self, step: int) -> None:
        self.log.append((self.name, "end", step))


def _controller(total: int, chunk: int, actions: list[Action]) -> tuple[Controller, list[int]]:
    chunks: list[int] = []
    position = [0]

    def run_chunk(n: int) -> tuple[str, int]:
        chunks.append(n)
        position[0] += n
        return ("chunk ending at", position[0])

    return Controller(run_chunk, total=total, chunk=chunk, actions=actions), chunks


def test_chunks_stop_at_every_interval_and_due_actions_run_in_order():
    log: list[tuple[str, str, int]] = []
    first, second = Recorder("backup", 4, log), Recorder("eval", 6, log)
    controller, chunks = _controller(12, 5, [first, second])
    assert controller.run(0, 12) == 12
    # chunks of at most 5 steps, cut at 4, 6, 8 and 12 (multiples of 4 and 6) and at the total
    assert chunks == [4, 2, 2, 4]
    assert log == [("backup", "begin", 0), ("eval", "begin", 0),
                   ("backup", "call", 4), ("eval", "call", 6), ("backup", "call", 8),
                   ("backup", "call", 12), ("eval", "call", 12),  # same step: list order
                   ("backup", "end", 12), ("eval", "end", 12)]
    times = controller.times
    assert times.train_seconds > 0 and times.loop_seconds >= times.train_seconds


def test_a_resumed_run_stopping_early_cuts_chunks_at_the_same_absolute_steps():
    log: list[tuple[str, str, int]] = []
    controller, chunks = _controller(20, 100, [Recorder("eval", 10, log)])
    controller.run_chunk(7)  # the input position of a job restored at step 7
    chunks.clear()
    assert controller.run(7, 15) == 15  # stop_at_step=15
    assert chunks == [3, 5]
    assert log == [("eval", "begin", 7), ("eval", "call", 10), ("eval", "end", 15)]


def test_nothing_runs_when_start_is_the_end():
    log: list[tuple[str, str, int]] = []
    controller, chunks = _controller(10, 5, [Recorder("eval", 5, log)])
    assert controller.run(10, 10) == 10
    assert chunks == [] and log == [("eval", "begin", 10), ("eval", "end", 10)]


class FakeBackup:
    """Stands in for recsys.train.backup.Backup (a TF checkpoint manager): the steps it saved."""

    def __init__(self) -> None:
        self.saved: list[int] = []
        self.cleaned = False

    def save(self, step: int) -> str:
        self.saved.append(step)
        return f"ckpt-{step}"

    def cleanup(self) -> None:
        self.cleaned = True


def test_saves_at_its_interval_at_every_evaluation_and_where_the_process_stops():
    backup = FakeBackup()
    saves = Saves(backup, every=5, also=lambda step: step % 7 == 0 or step == 30)
    controller, _ = _controller(30, 100, [saves, Recorder("eval", 7, [])])
    assert controller.run(0, 23) == 23
    assert backup.saved == [5, 7, 10, 14, 15, 20, 21, 23] and backup.cleaned


def test_saves_without_an_interval_only_at_evaluations_and_the_end():
    backup = FakeBackup()
    controller, chunks = _controller(12, 100, [Saves(backup, every=0, also=lambda step: step == 12)])
    controller.run(0, 12)
    assert backup.saved == [12] and chunks == [12]


def test_heartbeat_writes_the_file_the_supervisor_reads(tmp_path, capfd):
    from recsys.train import heartbeat

    path = str(tmp_path / "hb")
    beat = Heartbeat(path, every=3)
    controller, chunks = _controller(7, 100, [beat])
    beat.begin(0)
    assert heartbeat.read_heartbeat(path).phase == "begin"
    controller.run(0, 7)
    assert chunks == [3, 3, 1]
    last = heartbeat.read_heartbeat(path)
    assert (last.step, last.phase) == (7, "end")
    lines = [heartbeat.parse_line(x) for x in capfd.readouterr().err.splitlines()]
    assert [x for x in lines if x] == [(0, "begin"), (0, "begin"), (3, "train"), (6, "train"), (7, "end")]


def test_heartbeat_without_a_file_still_sets_the_chunk_length():
    controller, chunks = _controller(25, 100, [Heartbeat("", every=10)])
    controller.run(0, 25)
    assert chunks == [10, 10, 5]


def test_a_stop_request_ends_the_run_at_the_next_chunk_with_the_state_saved():
    """A Ctrl-C in `recsys train` turns `stop()` True: the chunk in flight finishes, the backup saves
    that step (the end), and no further chunk runs."""
    backup = FakeBackup()
    asked: list[int] = []
    controller, chunks = _controller(40, 3, [Saves(backup, every=10, also=lambda step: False)])

    def stop() -> bool:
        asked.append(sum(chunks))
        return sum(chunks) >= 7  # the signal arrived during the chunk that ends at step 9

    controller.stop = stop
    assert controller.run(0, 40) == 9
    assert chunks == [3, 3, 3] and asked == [3, 6, 9]
    assert backup.saved == [9] and backup.cleaned


class Halter(Recorder):
    """A recorder that halts the run from ``at`` on (an early stop decided at that step)."""

    def __init__(self, at: int, every: int, log: list[tuple[str, str, int]]) -> None:
        super().__init__("halter", every, log)
        self.at, self.step = at, 0

    def begin(self, step: int) -> None:
        super().begin(step)
        self.step = step

    def __call__(self, step: int, metrics: Any) -> None:
        super().__call__(step, metrics)
        self.step = step

    def halts(self) -> bool:
        return self.step >= self.at


def test_an_action_that_halts_ends_the_run_at_that_step_and_the_end_actions_see_it():
    log: list[tuple[str, str, int]] = []
    controller, chunks = _controller(40, 100, [Recorder("backup", 5, log), Halter(15, 5, log)])
    assert controller.run(0, 40) == 15
    assert chunks == [5, 5, 5]
    assert log[-4:] == [("backup", "call", 15), ("halter", "call", 15), ("backup", "end", 15),
                        ("halter", "end", 15)]


def test_a_run_resumed_where_it_had_halted_trains_no_further_step():
    log: list[tuple[str, str, int]] = []
    controller, chunks = _controller(40, 100, [Halter(15, 5, log)])
    assert controller.run(15, 40) == 15
    assert chunks == [] and log == [("halter", "begin", 15), ("halter", "end", 15)]
