"""The one timer for every figure Drift prints: ``time_calls`` for one call in a loop,
``time_turns`` / ``round_robin`` for calls measured side by side (they take turns, so machine
noise hits them alike). Used by drift-export's summary, drift-run's warm-up, drift-profile, the
demos and every benchmark.
"""

import time
from collections.abc import Callable

import numpy as np


def time_calls(call: Callable[[], object], n: int, warmup: int = 0) -> list[float]:
    """Seconds taken by each of ``n`` calls of ``call``, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def time_turns(calls: dict[str, Callable[[], object]], rounds: int, block: int = 1) -> dict[str, list[float]]:
    """Milliseconds per call, round-robin over ``calls`` in turns of ``block`` consecutive calls.

    With ``block`` 1 every call runs right after another one's, in the caches that one left (for
    two ONNX Runtime graphs or ORT vs torch, each then pays for the other's working set: ~20 % on
    ORT here). With a larger block the first call of each turn is dropped and the rest measure the
    steady state of a process running one of them in a loop, like drift-run; turns still
    alternate, so all share the machine's noise.
    """
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            for i in range(block):
                t0 = time.perf_counter()
                call()
                if block == 1 or i > 0:
                    times[name].append((time.perf_counter() - t0) * 1000)
    return times


def round_robin(
    calls: dict[str, Callable[[], object]], rounds: int, block: int = 1
) -> dict[str, dict[str, float]]:
    """p50/p99 (ms) of each call over ``rounds`` turns (see ``time_turns``), after one warm-up call each."""
    for call in calls.values():
        call()
    return {
        name: {"p50_ms": float(np.median(t)), "p99_ms": float(np.percentile(t, 99))}
        for name, t in time_turns(calls, rounds, block).items()
    }
