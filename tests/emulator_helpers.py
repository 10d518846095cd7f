"""Starting emulated servo chains and rigs for tests (real ptys, LeRobot's own classes on top)."""

import builtins
import contextlib
import os
import signal
import time
from pathlib import Path

from lerobot_policy_drift.robots.chain import ServoChain
from lerobot_policy_drift.robots.emulator import chain_plan
from lerobot_policy_drift.robots.rig import build_servos


@contextlib.contextmanager
def running_chain(arm: str, tmp_path: Path, role: str = "follower"):
    """An in-process chain of ``arm``'s servos, calibrated, on ``tmp_path / role``."""
    plan, _ = chain_plan(arm, role, tmp_path / role, f"test_{role}", tmp_path / "calibration")
    chain = ServoChain(plan.protocol, build_servos(plan, time.monotonic()), Path(plan.port)).start()
    try:
        yield chain, plan
    finally:
        chain.stop()


def wait_until(condition, timeout_s: float = 5.0, poll_s: float = 0.02):
    """Poll ``condition`` until it returns a truthy value; fail with the last value after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    value = condition()
    while not value and time.monotonic() < deadline:
        time.sleep(poll_s)
        value = condition()
    assert value, f"condition not met within {timeout_s} s"
    return value


def ctrl_c(proc) -> tuple[str, str]:
    """A terminal's Ctrl-C to ``proc``'s group (started with ``start_new_session``): its output, once
    it has ended with status 1 and no traceback."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stdout + stderr
    return stdout, stderr


def group_gone(pgid: int) -> bool:
    """True once no process of group ``pgid`` is left (a Ctrl-C'd program and its children)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@contextlib.contextmanager
def no_prompts():
    """Fail loudly if LeRobot asks the operator anything (calibration must be headless)."""

    def refuse(prompt=""):
        raise AssertionError(f"LeRobot prompted: {prompt!r}")

    saved = builtins.input
    builtins.input = refuse
    try:
        yield
    finally:
        builtins.input = saved


def assert_rate_held(report: dict, deadlines: int | None = None) -> None:
    """A session on the real clock held its rate: at most 1 % of its deadlines were missed, and with
    ``deadlines`` (a session of known length) each one either ticked or was counted missed. A VM
    stall on a shared 2-core machine costs a tick or two and is counted; a loop that cannot keep up
    misses far more."""
    ticks, missed = report["ticks"], report["missed_ticks"]
    if deadlines is not None:
        assert abs(ticks + missed - deadlines) <= 2, (ticks, missed, deadlines)
    assert missed <= (ticks + missed) // 100, f"{missed} of {ticks + missed} ticks missed"
