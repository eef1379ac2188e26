"""The link model on a virtual clock: transmission time, FIFO queueing,
the queue bound, loss and jitter statistics, determinism."""

import math

import numpy as np
import pytest

from semcom.channel_emulator.link import Link, LinkConfig, QueueFull


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
