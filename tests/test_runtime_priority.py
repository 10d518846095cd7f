"""The tick thread's CPU priority: every other thread of the process is reniced, it is not; a
session in a thread of a larger program spares its main thread and gives the others their
priority back at the end where the OS lets it.

Run in a child process: renicing cannot be undone without privileges, and the test process's
own threads must keep their priority for the timing tests after this one."""

import json
import os
import subprocess
import sys

import pytest

from lerobot_policy_drift.runtime.priority import favour_current_thread

CHILD = """
import json, os, threading
from lerobot_policy_drift.runtime.priority import favour_current_thread
started, release, tids = threading.Event(), threading.Event(), []
def other():
    tids.append(threading.get_native_id()); started.set(); release.wait()
worker = threading.Thread(target=other); worker.start(); started.wait()
me = threading.get_native_id()
own = os.getpriority(os.PRIO_PROCESS, me)
message = favour_current_thread(5).message
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


IN_A_THREAD = """
import json, os, threading
from lerobot_policy_drift.runtime.priority import favour_current_thread
started, release, tids, seen = threading.Event(), threading.Event(), [], {}
def other():
    tids.append(threading.get_native_id()); started.set(); release.wait()
def session():
    favoured = favour_current_thread(5)
    seen["other"] = os.getpriority(os.PRIO_PROCESS, tids[0])
    seen["message"], seen["restored"] = favoured.message, favoured.restore()
    seen["other_after"] = os.getpriority(os.PRIO_PROCESS, tids[0])
worker = threading.Thread(target=other); worker.start(); started.wait()
main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
tick = threading.Thread(target=session); tick.start(); tick.join()
seen["main"], seen["main_before"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), main
print(json.dumps(seen))
release.set(); worker.join()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux-only")
def test_a_session_in_a_thread_spares_the_main_thread_and_gives_priority_back():
    """The demo and the benchmarks run drift-run's loop in a thread: before, the main thread was left
    at nice 19, so every later lerobot-train, rig and session it started ran at nice 19 too, and a
    second session's tick thread had no priority over the rest."""
    out = subprocess.run([sys.executable, "-c", IN_A_THREAD], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    assert r["main"] == r["main_before"] and "main thread spared" in r["message"]
    assert r["other"] == min(r["main_before"] + 5, 19)  # the other thread yielded during the session
    if os.geteuid() == 0:  # lowering a nice value back needs root (or CAP_SYS_NICE)
        assert r["other_after"] == r["main_before"] and r["restored"].endswith(
            "threads given their priority back"
        )
    else:  # the process's own helper threads too (an allocator's, a pool's): at least this one kept
        assert r["other_after"] == r["other"] and "kept (lowering a nice value needs root" in r["restored"]


def test_zero_increment_changes_nothing():
    assert favour_current_thread(0).message == "off"
