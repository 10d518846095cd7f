"""CPU priority for the tick thread: every other thread of the session yields to it.

On a laptop or a Jetson the inference threads (ONNX Runtime's pool, or torch's), the camera
readers and the tick thread share a few cores. Linux's fair scheduler then preempts the tick
thread in its spin before a deadline as readily as any other thread, which shows as tick-start
jitter. Raising the *other* threads' nice value needs no privileges (only lowering one does) and
leaves the tick thread at its normal priority with most of the CPU weight whenever it is runnable.
Linux only (per-thread nice through /proc/self/task); elsewhere nothing changes and it says so.
"""

import os
import sys
import threading
from pathlib import Path

TASKS = Path("/proc/self/task")


def favour_current_thread(increment: int) -> str:
    """Renice every other thread of this process by ``increment`` (capped at 19); what was done."""
    if increment <= 0:
        return "off"
    if not TASKS.is_dir():
        return "unsupported here (no /proc/self/task); threads keep their priority"
    me = threading.get_native_id()
    own = os.getpriority(os.PRIO_PROCESS, me)
    target = min(own + increment, 19)
    changed = 0
    for entry in TASKS.iterdir():
        tid = int(entry.name)
        if tid == me:
            continue
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < target:
                os.setpriority(os.PRIO_PROCESS, tid, target)
                changed += 1
        except (ProcessLookupError, PermissionError):  # a thread that just ended
            continue
    return f"{changed} other threads at nice {target}, tick thread at {own}"


def keep_gil_through_spin(switch_ms: float) -> float:
    """Set Python's GIL switch interval for the loop; returns the one to restore afterwards.

    The tick thread spins (holding the GIL) for spin_ms before each deadline; a switch interval
    longer than that spin keeps the camera reader threads from taking the GIL from it just before
    the deadline (BENCHMARKS §6: 0.1–0.5 ms intervals made p99 jitter 0.5–3 ms)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(switch_ms / 1000)
    return before
