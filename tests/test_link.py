"""The link model on a virtual clock: transmission time, FIFO queueing,
the queue bound, loss and jitter statistics, determinism."""

import math

import numpy as np
import pytest

from semcom.channel_emulator.link import DeadlineTooSoon, Link, LinkConfig, QueueFull


def test_transmission_time_is_symbols_over_symbol_rate():
    link = Link(LinkConfig(symbol_rate=1e6, delay_seconds=0.02))
    sent = link.schedule(12_288, now=5.0)
    assert sent.transmit_seconds == pytest.approx(0.012288)
    assert sent.queue_seconds == 0 and sent.deliver_at == pytest.approx(5.0 + 0.012288 + 0.02)


def test_a_burst_queues_first_in_first_out():
    link = Link(LinkConfig(symbol_rate=1000.0, queue_frames=10))
    burst = [link.schedule(100, now=0.0) for _ in range(5)]  # 0.1 s each
    assert [t.queue_seconds for t in burst] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert link.waiting(now=0.0) == 4 and link.waiting(now=0.25) == 2
    later = link.schedule(100, now=1.0)  # the link is idle again
    assert later.queue_seconds == 0


def test_the_queue_is_bounded():
    link = Link(LinkConfig(symbol_rate=1000.0, queue_frames=3))
    for _ in range(4):  # one on the link, three waiting
        link.schedule(100, now=0.0)
    with pytest.raises(QueueFull, match="3 frames waiting"):
        link.schedule(100, now=0.0)
    link.schedule(100, now=0.15)  # the first finished at 0.1, the second left the queue
    with pytest.raises(QueueFull):
        link.schedule(100, now=0.15)


def test_loss_rate_matches_the_configured_probability():
    frames, p = 20_000, 0.1
    link = Link(LinkConfig(loss_probability=p), seed=1)
    lost = sum(link.schedule(10, now=float(i)).lost for i in range(frames))
    assert abs(lost - frames * p) < 5 * math.sqrt(frames * p * (1 - p))


def test_jitter_is_uniform_between_zero_and_the_configured_bound():
    link = Link(LinkConfig(delay_seconds=0.01, jitter_seconds=0.004), seed=2)
    extra = np.array([link.schedule(1, now=float(i)).propagation_seconds - 0.01 for i in range(20_000)])
    assert extra.min() >= 0 and extra.max() <= 0.004
    assert extra.mean() == pytest.approx(0.002, rel=0.02)
    assert extra.std() == pytest.approx(0.004 / math.sqrt(12), rel=0.03)


def test_the_link_is_deterministic_under_a_seed():
    config = LinkConfig(jitter_seconds=0.01, loss_probability=0.3)
    first, second, other = Link(config, seed=4), Link(config, seed=4), Link(config, seed=5)
    schedule = [first.schedule(5, float(i)) for i in range(100)]
    assert schedule == [second.schedule(5, float(i)) for i in range(100)]
    assert schedule != [other.schedule(5, float(i)) for i in range(100)]


@pytest.mark.parametrize("field,value", [("symbol_rate", -1.0), ("delay_seconds", math.inf),
                                          ("loss_probability", 1.5), ("queue_frames", 0)])
def test_invalid_link_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        Link(LinkConfig(**{field: value}))


def test_a_frame_that_would_arrive_after_its_deadline_is_refused_and_books_nothing():
    link = Link(LinkConfig(symbol_rate=1.0))  # 12,288 uses: 3.4 hours on the link
    with pytest.raises(DeadlineTooSoon, match="after the call's deadline in 3 s"):
        link.schedule(12_288, now=0.0, deadline=3.0)
    assert link.busy_seconds(now=0.0) == 0 and link.schedule(2, now=0.0, deadline=3.0).start == 0.0
    lossy, reference = (Link(LinkConfig(symbol_rate=1.0, loss_probability=0.5, jitter_seconds=0.1), seed=3)
                        for _ in range(2))
    with pytest.raises(DeadlineTooSoon):
        lossy.schedule(12_288, now=0.0, deadline=3.0)
    assert lossy.schedule(1, now=10.0) == reference.schedule(1, now=10.0)  # the refusal drew nothing


def test_a_released_frame_gives_the_link_back():
    link = Link(LinkConfig(symbol_rate=1000.0, queue_frames=10))
    first = link.schedule(1000, now=0.0)  # 1 s on the link
    last = link.schedule(5000, now=0.0)  # queued behind it, 5 s
    assert link.waiting(now=0.5) == 1 and link.busy_seconds(now=0.5) == pytest.approx(5.5)
    link.release(last, now=0.5)  # its caller went away while it waited
    assert link.waiting(now=0.5) == 0 and link.busy_seconds(now=0.5) == pytest.approx(0.5)
    link.release(first, now=0.5)  # and this one half-way through its transmission
    assert link.schedule(10, now=0.5).start == 0.5
