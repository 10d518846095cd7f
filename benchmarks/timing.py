"""Side-by-side timing: every call once per round, in turn, so machine noise hits them alike."""

import time
from collections.abc import Callable

import numpy as np


def round_robin(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, dict[str, float]]:
    """p50/p99 (ms) of each call over ``rounds`` rounds, after one warm-up call each."""
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - t0) * 1000)
    return {
        name: {"p50_ms": float(np.median(t)), "p99_ms": float(np.percentile(t, 99))}
        for name, t in times.items()
    }
