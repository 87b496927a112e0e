"""How often the view paints a streaming reply.

At a provider's usual speed the GUI thread is mostly idle, waiting for the network: the view
paints every display frame. A paint costs more as its open block grows (a long code block is
drawn again each time), so paints are spaced to take at most 1/16 of the time. When text
comes faster than the GUI thread can take it (it is busy all the time), receiving has to keep
the provider's full speed: paints may then take only 1/32, and the view updates a few times a
second, which is still more often than anyone reads text arriving that fast.
"""

from __future__ import annotations

import time
from collections.abc import Callable

FRAME_MS = 16  # at most once a display frame
MAX_FRAME_MS = 150  # reached only far beyond any provider's speed (> ~30 kB/s of text)
PAINT_SHARE = 16
SATURATED_SHARE = 32
SATURATED = 0.9  # the GUI thread was on the CPU this share of the time
SMOOTHING = 0.25  # of the newest interval's measurement, against the earlier ones


class FramePacer:
    """The interval to the next paint, from the cost of the last one and how busy the
    thread has been (its CPU time against the wall clock since the previous paint)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter,
                 cpu_clock: Callable[[], float] = time.thread_time) -> None:
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._wall = clock()
        self._cpu = cpu_clock()
        self.busy = 0.0

    def restart(self) -> None:
        """A new reply: what the thread did before says nothing about it."""
        self._wall, self._cpu, self.busy = self._clock(), self._cpu_clock(), 0.0

    def next_interval_ms(self, paint_ms: float) -> int:
        wall, cpu = self._clock(), self._cpu_clock()
        if wall > self._wall:
            load = min(1.0, max(0.0, (cpu - self._cpu) / (wall - self._wall)))
            self.busy += SMOOTHING * (load - self.busy)
        self._wall, self._cpu = wall, cpu
        share = SATURATED_SHARE if self.busy >= SATURATED else PAINT_SHARE
        return int(min(MAX_FRAME_MS, max(FRAME_MS, paint_ms * share)))
