"""Parity figures and gates (pure numpy): how close an exported graph is to its reference.

``measure`` is the one comparison loop: the export gate (export/harness.py) and ``drift-export
--verify`` (export/verify.py, on the bundle's golden set) both judge a graph with it.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Gate:
    """Thresholds in the policy's normalized action units."""

    max_abs: float
    min_cosine: float

    def passes(self, figures: "ParityFigures") -> bool:
        return figures.max_abs <= self.max_abs and figures.min_cosine >= self.min_cosine


FP32_GATE = Gate(max_abs=1e-4, min_cosine=0.99999)
# INT8 (opt-in, CPU): 2.5 % of the normalized range at worst, direction kept to 0.999 cosine.
INT8_GATE = Gate(max_abs=5e-2, min_cosine=0.999)
# FP16 / TensorRT / GPU execution providers (issue 4's gate): cosine ≥ 0.999, max |Δ| ≤ 1e-2.
ACCELERATOR_GATE = Gate(max_abs=1e-2, min_cosine=0.999)
# A scale within this many float32 ulps of its offset is a constant dimension (see constant_dims).
CONSTANT_ULPS = 64
GATES = {
    "onnxruntime-cpu-fp32": FP32_GATE,
    "onnxruntime-cpu-fp16": ACCELERATOR_GATE,
    "onnxruntime-cpu-int8": INT8_GATE,
}


def constant_dims(offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Dimensions that were constant in the training data. Their range is zero, or float noise:
    a few float32 ulps of the value itself (a motor the demonstrations never moved records
    min and max one rounding apart, and LeRobot keeps that as the scale)."""
    return np.abs(scale) <= CONSTANT_ULPS * np.finfo(np.float32).eps * np.maximum(np.abs(offset), 1.0)


def to_normalized(robot: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Robot units -> the policy's normalized units. A constant dimension (the unnormalizer maps
    every network output to the same value, up to rounding) maps to 0, so it never counts as a
    difference the robot could see."""
    constant = constant_dims(offset, scale)
    return np.where(constant, 0.0, (robot - offset) / np.where(constant, 1.0, scale))


def compare(actual: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """(max |actual − expected|, min over batch items of the cosine of the flattened chunks).
    A non-finite output is infinitely far (and at cosine −1), never silently skipped by max/min."""
    if not np.isfinite(actual).all():
        return float("inf"), -1.0
    a = actual.reshape(len(actual), -1).astype(np.float64)
    e = expected.reshape(len(expected), -1).astype(np.float64)
    cos = (a * e).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(e, axis=1), 1e-12)
    return float(np.abs(a - e).max()), float(cos.min())


@dataclass
class ParityFigures:
    """Worst figures over many comparisons."""

    max_abs: float = 0.0
    min_cosine: float = 1.0
    max_robot_abs: float = 0.0

    def add(self, figures: tuple[float, float], robot_abs: float) -> None:
        self.max_abs = max(self.max_abs, figures[0])
        self.min_cosine = min(self.min_cosine, figures[1])
        self.max_robot_abs = max(self.max_robot_abs, robot_abs)


def measure(
    run: Callable[[dict[str, np.ndarray]], np.ndarray],
    feeds: Sequence[dict[str, np.ndarray]],
    expected: Sequence[np.ndarray],
    offset: np.ndarray,
    scale: np.ndarray,
) -> ParityFigures:
    """``run`` on every feed against its expected robot-unit output, compared in normalized units."""
    figures = ParityFigures()
    for feed, want in zip(feeds, expected, strict=True):
        out = run(feed)
        figures.add(
            compare(to_normalized(out, offset, scale), to_normalized(want, offset, scale)),
            robot_abs=float(np.abs(out - want).max()),
        )
    return figures
