"""Operator commands from the control pipe: bounded lines, counted drops, ``stop`` never stuck."""

import os
import threading

import pytest

from lerobot_policy_drift.runtime.config import ConfigError
from lerobot_policy_drift.runtime.triggers import MAX_LINE, LineSplitter, Triggers, check_pipe_path
from tests.emulator_helpers import wait_until


def test_line_splitter_keeps_lines_and_drops_overlong_ones_in_bounded_memory():
    lines = LineSplitter(max_len=8)
    assert lines.feed(b"auto\nsto") == [b"auto"]
    assert lines.feed(b"p\n") == [b"stop"]
    assert lines.feed(b"x" * 5) == [] and lines.feed(b"y" * 5) == []  # 10 bytes: over the bound
    assert len(lines._partial) == 0  # nothing of it is kept
    assert lines.feed(b"z" * 1000 + b"\nteleop\n") == [None, b"teleop"]  # one drop, then fine again
    assert lines.feed(b"12345678\n123456789\n") == [b"12345678", None]


def test_a_flood_without_newlines_cannot_hold_back_stop(tmp_path):
    """5 MB without a newline, an unknown line, then ``stop``: the flood is dropped as one counted
    over-long line while it streams (it used to be re-scanned on every read, quadratically) and
    ``stop`` is queued right behind it."""
    pipe = tmp_path / "control"
    triggers = Triggers()
    triggers.open_pipe(pipe)
    triggers.watch_pipe(pipe)

    def write():
        fd = os.open(pipe, os.O_WRONLY)
        for _ in range(80):
            os.write(fd, b"x" * 65536)
        os.write(fd, b"\nreboot the arm\nstop\n")
        os.close(fd)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(timeout=60)
    assert not writer.is_alive()
    wait_until(lambda: not triggers.commands.empty(), timeout_s=10)
    assert triggers.drain() == [("stop", "pipe")]
    assert triggers.events == {"control_pipe_overlong_line": 1, "control_pipe_unknown_line": 1}
    triggers.close()
    assert not pipe.exists()  # the FIFO drift-run made is gone with the session


def test_a_control_pipe_that_cannot_be_ours_is_refused_up_front(tmp_path):
    regular = tmp_path / "notes.txt"
    regular.write_text("keep")
    with pytest.raises(ConfigError, match="exists and is not a FIFO"):
        check_pipe_path(regular)
    with pytest.raises(ConfigError, match="folder .*missing does not exist"):
        check_pipe_path(tmp_path / "missing" / "control")
    assert regular.read_text() == "keep" and len("teleop") <= MAX_LINE
