"""Pre/post-processors for DriftPolicy, built the way LeRobot builds Diffusion Policy's.

Pre: rename → add batch dim → move to device → normalize (state/action min-max, images
mean-std). Post: unnormalize the action → move to CPU. Using LeRobot's default pipeline
keeps `lerobot-train`, `lerobot-eval` and `lerobot-rollout` free of special cases, and
saves the statistics next to the checkpoint so the exporter can fold them into the graph.
The one change: state ranges narrower than ``config.state_range_floor`` are widened before
the normalizer sees them (``floor_state_ranges``), so they are saved widened too.
"""

from typing import Any

import numpy as np
import torch
from lerobot.configs.types import FeatureType, NormalizationMode
from lerobot.processor import PolicyAction, PolicyProcessorPipeline, make_default_pre_post_processors

from .configuration_drift import DriftConfig


def floor_state_ranges(stats: dict[str, dict[str, Any]], config: DriftConfig) -> dict[str, dict[str, Any]]:
    """A copy of ``stats`` whose robot-state ranges are at least ``config.state_range_floor``
    wide: min/max widened about their centre (MIN_MAX), or the std raised to half the floor
    (MEAN_STD). Only the robot state (joint units are known: degrees and 0–100 on LeRobot's SO
    and Koch arms); environment state comes in any unit and is left alone, and so are actions: a
    constant action dimension unnormalizes to its constant whatever the network outputs."""
    floor = config.state_range_floor
    out = {key: dict(s) for key, s in stats.items()}
    for key, feature in config.input_features.items():
        mode = config.normalization_mapping.get(feature.type.value)
        s = out.get(key)
        if feature.type is not FeatureType.STATE or not s:
            continue
        if mode == NormalizationMode.MIN_MAX and "min" in s and "max" in s:
            lo, hi = _array(s["min"]), _array(s["max"])
            narrow, centre = hi - lo < floor, (lo + hi) / 2
            s["min"], s["max"] = (
                np.where(narrow, centre - floor / 2, lo),
                np.where(narrow, centre + floor / 2, hi),
            )
        elif mode == NormalizationMode.MEAN_STD and "std" in s:
            s["std"] = np.maximum(_array(s["std"]), floor / 2)
    return out


def _array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def make_drift_pre_post_processors(
    config: DriftConfig,
    dataset_stats: dict[str, dict[str, torch.Tensor]] | None = None,
) -> tuple[
    PolicyProcessorPipeline[dict[str, Any], dict[str, Any]],
    PolicyProcessorPipeline[PolicyAction, PolicyAction],
]:
    if dataset_stats is not None:
        dataset_stats = floor_state_ranges(dataset_stats, config)
    return make_default_pre_post_processors(config, dataset_stats)
