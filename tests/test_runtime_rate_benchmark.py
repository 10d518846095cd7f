"""The rate benchmark's pairing of drift-run's goal writes (host clock) with their arrivals at the
emulated chain (the emulator's clock): the pty hop, write by write."""

import pytest

from benchmarks.runtime_rate import hops_ms


def test_each_write_is_paired_with_the_arrival_nearest_it():
    period = 0.01
    returned = [0.100, 0.110, 0.120, 0.130]
    # 0.2 ms after; 0.1 ms *before* the write returned (the bytes left inside send_action);
    # 3.8 ms after (a late hop); none for the last write (lost); a stray arrival far from any write
    arrivals = [0.0502, 0.1002, 0.1099, 0.1238]
    hops = hops_ms(returned, arrivals, period)
    assert hops == pytest.approx([0.2, -0.1, 3.8])
    assert hops_ms(returned, [], period) == []
