"""Policies of the two sizes the benchmarks compare (LeRobot's default U-Net and a small one),
with random weights and synthetic normalization statistics: what inference costs, without a
dataset or a training run."""

from pathlib import Path

import numpy as np
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.processor.normalize_processor import NormalizerProcessorStep, UnnormalizerProcessorStep

from lerobot_policy_drift.drift import DriftConfig, DriftPolicy, make_drift_pre_post_processors
from lerobot_policy_drift.export.checkpoint import LoadedCheckpoint

SIZES = {"small": (64, 128, 256), "default": (256, 512, 1024)}  # U-Net down_dims
IMAGE = (3, 96, 96)  # camera frames, channels first


def synthetic_checkpoint(down_dims, cameras: int) -> LoadedCheckpoint:
    """A random-weight DriftPolicy over 6 joints and ``cameras`` 96x96 cameras, ready to export."""
    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (6,))}
    for i in range(cameras):
        inputs[f"observation.images.cam{i}"] = PolicyFeature(FeatureType.VISUAL, IMAGE)
    cfg = DriftConfig(
        input_features=inputs,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (6,))},
        down_dims=down_dims,
        crop_shape=(84, 84),
        device="cpu",
    )
    stats = {k: {"min": -np.ones(6), "max": np.ones(6)} for k in ("observation.state", "action")}
    for key in cfg.image_features:
        stats[key] = {"mean": np.full((3, 1, 1), 0.5), "std": np.full((3, 1, 1), 0.25)}
    pre, post = make_drift_pre_post_processors(cfg, dataset_stats=stats)
    step = lambda pipe, cls: next(s for s in pipe.steps if isinstance(s, cls))  # noqa: E731
    return LoadedCheckpoint(
        path=Path("."),
        policy=DriftPolicy(cfg).eval(),
        preprocessor=pre,
        postprocessor=post,
        normalizer=step(pre, NormalizerProcessorStep),
        unnormalizer=step(post, UnnormalizerProcessorStep),
        fps=30,
        state_names=[f"m{i}" for i in range(6)],
        action_names=[f"m{i}" for i in range(6)],
        dataset_root=None,
        dataset_repo_id=None,
    )
