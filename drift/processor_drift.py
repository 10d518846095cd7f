"""Pre/post-processors for DriftPolicy, built the way LeRobot builds Diffusion Policy's.

Pre: rename → add batch dim → move to device → normalize (state/action min-max, images
mean-std). Post: unnormalize the action → move to CPU. Using LeRobot's default pipeline
keeps `lerobot-train`, `lerobot-eval` and `lerobot-rollout` free of special cases, and
saves the statistics next to the checkpoint so the exporter can fold them into the graph.
"""

from typing import Any

import torch
from lerobot.processor import PolicyAction, PolicyProcessorPipeline, make_default_pre_post_processors

from .configuration_drift import DriftConfig


def make_drift_pre_post_processors(
    config: DriftConfig,
    dataset_stats: dict[str, dict[str, torch.Tensor]] | None = None,
) -> tuple[
    PolicyProcessorPipeline[dict[str, Any], dict[str, Any]],
    PolicyProcessorPipeline[PolicyAction, PolicyAction],
]:
    return make_default_pre_post_processors(config, dataset_stats)
