"""Frame pacing of a streaming reply: every display frame while the GUI thread has time to
spare, fewer paints when it is busy all the time (receiving must keep the provider's speed)."""

from __future__ import annotations

from desktop_chat.core.chat.pacing import (
    FRAME_MS,
    MAX_FRAME_MS,
    PAINT_SHARE,
    SATURATED_SHARE,
    FramePacer,
)


class Clocks:
    """A wall clock and a thread CPU clock that tests advance by hand."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 10.0

    def spend(self, wall_s: float, busy: float) -> None:
        self.wall += wall_s
        self.cpu += wall_s * busy


def pacer_with(clocks: Clocks) -> FramePacer:
    return FramePacer(clock=lambda: clocks.wall, cpu_clock=lambda: clocks.cpu)


def test_a_thread_with_time_to_spare_paints_every_frame_unless_a_paint_is_costly() -> None:
    clocks = Clocks()
    pacer = pacer_with(clocks)
    for _ in range(50):  # a provider's usual speed: the thread mostly waits for the network
        clocks.spend(0.016, busy=0.15)
        assert pacer.next_interval_ms(0.6) == FRAME_MS
    clocks.spend(0.016, busy=0.15)
    # a long code block drawn again each paint: paints are spaced to 1/16 of the time
    assert pacer.next_interval_ms(4.0) == int(4.0 * PAINT_SHARE)


def test_a_saturated_thread_paints_half_as_often() -> None:
    clocks = Clocks()
    pacer = pacer_with(clocks)
    intervals = []
    for _ in range(30):  # text arrives faster than the thread can take it
        clocks.spend(0.05, busy=1.0)
        intervals.append(pacer.next_interval_ms(3.0))
    assert intervals[0] == int(3.0 * PAINT_SHARE)  # one busy interval is not enough
    assert intervals[-1] == int(3.0 * SATURATED_SHARE)
    assert pacer.next_interval_ms(50.0) == MAX_FRAME_MS  # never slower than this


def test_the_pace_recovers_when_the_stream_slows_down_and_restarts_with_a_reply() -> None:
    clocks = Clocks()
    pacer = pacer_with(clocks)
    for _ in range(30):
        clocks.spend(0.05, busy=1.0)
        pacer.next_interval_ms(2.0)
    for _ in range(30):
        clocks.spend(0.05, busy=0.2)
        interval = pacer.next_interval_ms(2.0)
    assert interval == int(2.0 * PAINT_SHARE)
    for _ in range(30):
        clocks.spend(0.05, busy=1.0)
        pacer.next_interval_ms(2.0)
    pacer.restart()
    assert pacer.busy == 0.0
    clocks.spend(0.016, busy=1.0)
    assert pacer.next_interval_ms(2.0) == int(2.0 * PAINT_SHARE)


def test_a_clock_that_does_not_move_changes_nothing() -> None:
    clocks = Clocks()
    pacer = pacer_with(clocks)
    assert pacer.next_interval_ms(0.1) == FRAME_MS
    assert pacer.busy == 0.0
