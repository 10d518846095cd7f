"""The tick thread's CPU priority: every other thread of the process is reniced, it is not.

Run in a child process: renicing cannot be undone without privileges, and the test process's
own threads must keep their priority for the timing tests after this one."""

import json
import subprocess
import sys

import pytest

from runtime.priority import favour_current_thread

CHILD = """
import json, os, threading
from runtime.priority import favour_current_thread
started, release, tids = threading.Event(), threading.Event(), []
def other():
    tids.append(threading.get_native_id()); started.set(); release.wait()
worker = threading.Thread(target=other); worker.start(); started.wait()
me = threading.get_native_id()
own = os.getpriority(os.PRIO_PROCESS, me)
message = favour_current_thread(5)
print(json.dumps({"own_before": own, "own_after": os.getpriority(os.PRIO_PROCESS, me),
                  "other": os.getpriority(os.PRIO_PROCESS, tids[0]), "message": message}))
release.set(); worker.join()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux-only")
def test_other_threads_yield_and_the_calling_thread_keeps_its_priority():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    target = min(r["own_before"] + 5, 19)
    assert r["own_after"] == r["own_before"]
    assert r["other"] == target
    assert f"at nice {target}, tick thread at {r['own_before']}" in r["message"]


def test_zero_increment_changes_nothing():
    assert favour_current_thread(0) == "off"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_FIFO is Linux-only here")
def test_realtime_priority_holds_inside_the_block_and_is_restored_after():
    """Where the process may use SCHED_FIFO (CAP_SYS_NICE, rtprio limit) the thread runs under it
    inside the block; where it may not, it says so and scheduling is unchanged. Either way the
    thread's policy afterwards is what it was before."""
    import os

    from runtime.priority import realtime_thread

    before = os.sched_getscheduler(0), os.sched_getparam(0).sched_priority
    with realtime_thread(7) as message:
        inside = os.sched_getscheduler(0), os.sched_getparam(0).sched_priority
    assert (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority) == before
    if message.startswith("not permitted"):
        assert inside == before and "CAP_SYS_NICE" in message
    else:
        assert message == "tick thread SCHED_FIFO 7" and inside == (os.SCHED_FIFO, 7)
    with realtime_thread(0) as message:
        assert message == "off"
