"""The tick thread's CPU priority: every other thread of the process is reniced, it is not.

Run in a child process: renicing cannot be undone without privileges, and the test process's
own threads must keep their priority for the timing tests after this one."""

import json
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
