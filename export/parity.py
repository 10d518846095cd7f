"""Parity figures and gates (pure numpy): how close an exported graph is to its reference."""

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
GATES = {"onnxruntime-cpu-fp32": FP32_GATE, "onnxruntime-cpu-int8": INT8_GATE}


def to_normalized(robot: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Robot units -> the policy's normalized units. A dimension with zero scale (constant in the
    training data: the unnormalizer maps every network output to the same value) maps to 0, so
    it never counts as a difference the robot could see."""
    return np.where(scale == 0, 0.0, (robot - offset) / np.where(scale == 0, 1.0, scale))


def compare(actual: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """(max |actual − expected|, min over batch items of the cosine of the flattened chunks)."""
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
