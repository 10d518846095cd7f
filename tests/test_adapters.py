"""The USB-serial adapter models alone: when the host sees each reply of a transaction."""

import pytest

from lerobot_policy_drift.robots.adapters import ADAPTERS

# A sync read of six servos at 1 Mbps: 8-byte status packets, 80 µs each, back to back from t=1 s.
SIX = [(1.0 + i * 80e-6, 1.0 + (i + 1) * 80e-6, 8) for i in range(6)]


def test_ideal_delivers_each_reply_when_it_is_complete():
    assert ADAPTERS["ideal"].deliveries(SIX) == [done for _, done, _ in SIX]


def test_ftdi_holds_a_short_reply_for_its_latency_timer():
    times = ADAPTERS["ftdi"].deliveries(SIX)  # 48 bytes: under the 62-byte buffer
    assert times == [pytest.approx(1.016)] * 6
    low = ADAPTERS["ftdi-low-latency"].deliveries(SIX)
    assert low == [pytest.approx(1.001)] * 6


def test_ftdi_ships_a_full_buffer_at_once_and_the_rest_on_the_timer():
    nine = [(1.0 + i * 80e-6, 1.0 + (i + 1) * 80e-6, 8) for i in range(9)]  # 72 bytes
    times = ADAPTERS["ftdi"].deliveries(nine)
    assert times[:8] == [pytest.approx(1.001)] * 8  # 64 bytes ≥ 62 at 1.00064 s: the next frame
    assert times[8] == pytest.approx(1.017)  # the ninth began waiting at 1.00064 s


def test_a_reply_after_the_timer_fired_waits_for_its_own():
    late = [(1.0, 1.0001, 8), (1.5, 1.5001, 8)]
    assert ADAPTERS["ftdi"].deliveries(late) == [pytest.approx(1.016), pytest.approx(1.516)]


def test_ch340_delivers_at_the_next_usb_frame():
    times = ADAPTERS["ch340"].deliveries(SIX)
    assert times == [pytest.approx(1.001)] * 6
    assert all(t >= done for t, (_, done, _) in zip(times, SIX, strict=True))
