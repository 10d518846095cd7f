"""CPU priority for the tick thread: every other thread of the session yields to it.

On a laptop or a Jetson the inference threads (ONNX Runtime's pool, or torch's), the camera
readers and the tick thread share a few cores. Linux's fair scheduler then preempts the tick
thread in its spin before a deadline as readily as any other thread, which shows as tick-start
jitter. Raising the *other* threads' nice value needs no privileges (only lowering one does) and
leaves the tick thread at its normal priority with most of the CPU weight whenever it is runnable.
Linux only (per-thread nice through /proc/self/task); elsewhere nothing changes and it says so.

A session run in a thread of a larger program (the demo, a benchmark, a test) spares that
program's main thread, and gives every thread back its nice value at the session's end where
the OS lets it (lowering one needs root or CAP_SYS_NICE): otherwise every later session in the
process would start with its tick thread as low as the rest, and every child process the main
thread starts would inherit nice 19.
"""

import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

TASKS = Path("/proc/self/task")


@dataclass
class Favoured:
    """What ``favour_current_thread`` did (``message``, for the report) and what to undo."""

    message: str
    before: dict[int, int] = field(default_factory=dict)  # thread id -> its nice value before

    def restore(self) -> str:
        """Each reniced thread back to its nice value; what was done."""
        restored = kept = 0
        for tid, nice in self.before.items():
            try:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
                restored += 1
            except ProcessLookupError:  # ended during the session
                continue
            except PermissionError:  # lowering a nice value needs root or CAP_SYS_NICE
                kept += 1
        kept_note = f", {kept} kept (lowering a nice value needs root or CAP_SYS_NICE)" if kept else ""
        return f"{restored} threads given their priority back{kept_note}"


def favour_current_thread(increment: int) -> Favoured:
    """Renice every other thread of this process by ``increment`` (capped at 19), the main thread
    excepted when the caller is not it."""
    if increment <= 0:
        return Favoured("off")
    if not TASKS.is_dir():
        return Favoured("unsupported here (no /proc/self/task); threads keep their priority")
    me = threading.get_native_id()
    spared = (
        set()
        if threading.current_thread() is threading.main_thread()
        else {threading.main_thread().native_id}
    )
    own = os.getpriority(os.PRIO_PROCESS, me)
    target = min(own + increment, 19)
    before = {}
    for entry in TASKS.iterdir():
        tid = int(entry.name)
        if tid == me or tid in spared:
            continue
        try:
            nice = os.getpriority(os.PRIO_PROCESS, tid)
            if nice < target:
                os.setpriority(os.PRIO_PROCESS, tid, target)
                before[tid] = nice
        except (ProcessLookupError, PermissionError):  # a thread that just ended
            continue
    main_note = " (the program's main thread spared)" if spared else ""
    return Favoured(f"{len(before)} other threads at nice {target}{main_note}, tick thread at {own}", before)


def keep_gil_through_spin(switch_ms: float) -> float:
    """Set Python's GIL switch interval for the loop; returns the one to restore afterwards.

    The tick thread spins (holding the GIL) for spin_ms before each deadline; a switch interval
    longer than that spin keeps the camera reader threads from taking the GIL from it just before
    the deadline (BENCHMARKS §6: 0.1–0.5 ms intervals made p99 jitter 0.5–3 ms)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(switch_ms / 1000)
    return before
