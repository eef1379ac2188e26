"""Link emulation: a single shared link with a FIFO queue, in the way of a
store-and-forward network hop.

A frame of k complex channel uses occupies the link for k / symbol_rate
seconds. Frames are transmitted one at a time in arrival order; a frame that
arrives while the link is busy waits in the queue (queueing delay). It then
propagates for `delay_seconds` plus jitter drawn uniformly from
[0, jitter_seconds]; propagation does not occupy the link. A frame is lost
(erased) with probability `loss_probability`, independently; a lost frame
still occupied the link. At most `queue_frames` frames may wait; one more is
refused (the caller reports RESOURCE_EXHAUSTED).

No caller can take the link from the others for longer than it waits itself:
a frame that would arrive after its caller's deadline is refused before it is
booked (the caller reports DEADLINE_EXCEEDED at once), and a frame whose caller
goes away (cancelled, or past its deadline) is released: the link is free from
that moment if it was the last frame booked, and it no longer counts as waiting.

`schedule` is pure bookkeeping on a clock the caller passes in, so it is
deterministic under a seed and testable without waiting; `book` and `deliver`,
what the service calls, book on the event loop's clock and wait until delivery.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinkConfig:
    symbol_rate: float = 0.0  # complex channel uses per second; 0: infinitely fast
    delay_seconds: float = 0.0
    jitter_seconds: float = 0.0
    loss_probability: float = 0.0
    queue_frames: int = 64

    def validate(self) -> None:
        """Raises ValueError naming the first field out of range."""
        for name in ("symbol_rate", "delay_seconds", "jitter_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: {value} must be a finite number >= 0")
        if not 0.0 <= self.loss_probability <= 1.0:
            raise ValueError(f"loss_probability: {self.loss_probability} is outside [0, 1]")
        if self.queue_frames < 1:
            raise ValueError(f"queue_frames: {self.queue_frames} must be at least 1")


@dataclass(frozen=True)
class Transmission:
    """When one frame goes out and arrives, on the clock passed to schedule()."""

    arrival: float
    start: float  # transmission begins (after queueing)
    transmit_seconds: float
    propagation_seconds: float  # delay plus this frame's jitter
    lost: bool

    @property
    def queue_seconds(self) -> float:
        return self.start - self.arrival

    @property
    def deliver_at(self) -> float:
        return self.start + self.transmit_seconds + self.propagation_seconds


class QueueFull(Exception):
    pass


class DeadlineTooSoon(Exception):
    """The frame would arrive after its caller's deadline: it is not booked."""


class Link:
    """The shared link; thread-safe."""

    def __init__(self, config: LinkConfig = LinkConfig(), seed: int | None = None):
        config.validate()
        self.config = config
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._free_at = -math.inf  # when the link finishes its last scheduled transmission
        self._starts: deque[float] = deque()  # start times of frames not yet transmitting

    def reconfigure(self, config: LinkConfig, seed: int | None = None) -> None:
        config.validate()
        with self._lock:
            self.config = config
            if seed is not None:
                self._rng = np.random.default_rng(seed)

    def schedule(self, channel_uses: int, now: float, deadline: float | None = None) -> Transmission:
        """Books the link for a frame arriving at `now`; raises QueueFull, or DeadlineTooSoon (booking
        nothing) when the frame would arrive after `deadline` (None: no deadline)."""
        with self._lock:
            c = self.config
            while self._starts and self._starts[0] <= now:
                self._starts.popleft()
            if len(self._starts) >= c.queue_frames:
                raise QueueFull(f"link queue full: {len(self._starts)} frames waiting (queue_frames={c.queue_frames})")
            start = max(now, self._free_at)
            transmit = channel_uses / c.symbol_rate if c.symbol_rate > 0 else 0.0
            # Refused on the frame's earliest arrival (no jitter), before its random draws: a refused
            # frame leaves the seeded jitter and loss sequence of the frames after it as it was.
            earliest = start + transmit + c.delay_seconds
            if deadline is not None and earliest > deadline:
                raise DeadlineTooSoon(
                    f"the link would deliver this frame in {earliest - now:.3g} s at the earliest (queue "
                    f"{start - now:.3g} s, {channel_uses} uses at {c.symbol_rate:g}/s, delay "
                    f"{c.delay_seconds:.3g} s), after the call's deadline in {deadline - now:.3g} s")
            jitter = float(self._rng.uniform(0.0, c.jitter_seconds)) if c.jitter_seconds > 0 else 0.0
            lost = bool(self._rng.random() < c.loss_probability) if c.loss_probability > 0 else False
            transmission = Transmission(now, start, transmit, c.delay_seconds + jitter, lost)
            self._free_at = start + transmit
            if start > now:
                self._starts.append(start)
            return transmission

    def release(self, transmission: Transmission, now: float) -> None:
        """Gives back the link time of a booked frame nobody waits for any more. Only the last frame's
        time can be given back (the ones booked after it keep their slots); any frame stops counting as
        waiting."""
        with self._lock:
            end = transmission.start + transmission.transmit_seconds
            if transmission.start > now and transmission.start in self._starts:
                self._starts.remove(transmission.start)
            if self._free_at == end and now < end:
                self._free_at = max(now, transmission.start)

    def busy_seconds(self, now: float) -> float:
        """How long the link stays busy with the frames booked so far (0: idle)."""
        with self._lock:
            return max(0.0, self._free_at - now)

    def book(self, channel_uses: int, timeout: float | None = None) -> Transmission:
        """Books the link for a frame arriving now on the running event loop's clock, to arrive within
        `timeout` seconds (None: no limit); raises QueueFull or DeadlineTooSoon."""
        now = asyncio.get_running_loop().time()
        return self.schedule(channel_uses, now=now, deadline=None if timeout is None else now + timeout)

    async def deliver(self, transmission: Transmission) -> None:
        """Returns once a booked frame has arrived (lost or not), on the event loop's clock. Cancelled
        (the caller went away), it releases the frame's link time."""
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(max(0.0, transmission.deliver_at - loop.time()))
        except asyncio.CancelledError:
            self.release(transmission, loop.time())
            raise

    def waiting(self, now: float) -> int:
        """Frames queued behind the one on the link at time `now`."""
        with self._lock:
            return sum(1 for start in self._starts if start > now)
