"""ONNX Runtime sessions tuned for batch-1 latency on a small CPU.

Settings (see BENCHMARKS.md for the measurements): all graph optimizations, sequential
execution with one inter-op thread, and spinning off by default, because the control loop
shares the cores with inference and spinning threads steal them from it.
"""

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def create_session(
    model: Path,
    threads: int | None = None,
    spinning: bool = False,
    level: str = "all",
    providers: list[str] | None = None,
) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = LEVELS[level]
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(model), opts, providers=providers or ["CPUExecutionProvider"])


def run(session: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The single output of a bundle graph for one feed dict."""
    return session.run(None, feeds)[0]
