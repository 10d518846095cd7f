"""The exported computation: raw robot units and uint8 images in, raw robot-unit actions out.

``DriftGraph`` wraps a trained DriftPolicy with LeRobot's own normalizer and unnormalizer
steps (their transforms trace into plain arithmetic with the statistics as constants), so the
graph needs neither torch nor LeRobot at run time. Inside: uint8 → [0, 1], normalization,
centre crop (eval mode), encoder, one U-Net call, the executed slice, unnormalization.

A prefix-conditioned checkpoint's graph also takes the committed actions: ``action.prefix``
[B, max_prefix_steps, action_dim] in robot units (normalized inside with the action statistics)
and ``action.prefix_length`` [B] (int64, 0..max_prefix_steps): the first ``prefix_length``
returned actions are those, and the rest continue them.
"""

import copy

import numpy as np
import torch
from lerobot.configs.types import FeatureType
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE
from torch import Tensor, nn

from lerobot_policy_drift.drift.lerobot_compat import apply_normalization

from .checkpoint import LoadedCheckpoint

NOISE = "noise"
PREFIX, PREFIX_LENGTH = "action.prefix", "action.prefix_length"
OUTPUT = "action"


def max_prefix_steps(config) -> int:
    """The committed actions a checkpoint's graph takes: 0 unless it is a prefix-conditioned drift
    policy (other LeRobot policy types, e.g. ``diffusion``, have no such field)."""
    return config.max_prefix_steps if getattr(config, "prefix_conditioning", False) else 0


def input_names(ckpt: LoadedCheckpoint) -> list[str]:
    cfg = ckpt.policy.config
    names = [OBS_STATE]
    if cfg.env_state_feature:
        names.append(OBS_ENV_STATE)
    return (
        names
        + list(cfg.image_features)
        + [NOISE]
        + ([PREFIX, PREFIX_LENGTH] if max_prefix_steps(cfg) else [])
    )


def input_shapes(ckpt: LoadedCheckpoint, batch: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """name → (shape, dtype) of every graph input, in graph order."""
    cfg = ckpt.policy.config
    s = cfg.n_obs_steps
    shapes = {OBS_STATE: ((batch, s, cfg.robot_state_feature.shape[0]), "float32")}
    if cfg.env_state_feature:
        shapes[OBS_ENV_STATE] = ((batch, s, cfg.env_state_feature.shape[0]), "float32")
    for key, ft in cfg.image_features.items():
        shapes[key] = ((batch, s, *ft.shape), "uint8")
    shapes[NOISE] = ((batch, cfg.horizon, cfg.action_feature.shape[0]), "float32")
    if max_prefix_steps(cfg):
        shapes[PREFIX] = ((batch, cfg.max_prefix_steps, cfg.action_feature.shape[0]), "float32")
        shapes[PREFIX_LENGTH] = ((batch,), "int64")
    return shapes


class StaticCenterCrop(nn.Module):
    """torchvision's eval-mode CenterCrop for a known input size, as plain slicing.

    torchvision computes the offsets from the traced tensor shape (which fails under ONNX
    tracing); here they are Python ints, rounded the same way, so the graph holds one Slice.
    """

    def __init__(self, in_hw: tuple[int, int], out_hw: tuple[int, int]):
        super().__init__()
        self.top = int(round((in_hw[0] - out_hw[0]) / 2.0))
        self.left = int(round((in_hw[1] - out_hw[1]) / 2.0))
        self.height, self.width = out_hw

    def forward(self, x: Tensor) -> Tensor:
        return x[..., self.top : self.top + self.height, self.left : self.left + self.width]


class DriftGraph(nn.Module):
    """forward(state, [env_state], *images_uint8, noise, [prefix, prefix_length]) → actions
    [B, n_action_steps, action_dim]."""

    def __init__(self, ckpt: LoadedCheckpoint):
        super().__init__()
        self.policy = copy.deepcopy(ckpt.policy).eval()
        self.normalizer = ckpt.normalizer
        self.unnormalizer = ckpt.unnormalizer
        cfg = self.policy.config
        if cfg.crop_shape is not None and cfg.image_features:
            in_hw = tuple(next(iter(cfg.image_features.values())).shape[1:])
            for encoder in self.policy.model.rgb_encoder:
                encoder.center_crop = StaticCenterCrop(in_hw, tuple(cfg.crop_shape))
        self.camera_keys = list(cfg.image_features)
        self.has_env_state = cfg.env_state_feature is not None
        self.has_prefix = cfg.prefix_conditioning
        self.eval()  # an inference graph only: forward refuses training mode

    def forward(self, *inputs: Tensor) -> Tensor:
        assert not self.training and not any(m.training for m in self.policy.modules()), "export needs eval()"
        inputs = list(inputs)
        state = inputs.pop(0)
        batch = {OBS_STATE: apply_normalization(self.normalizer, state, OBS_STATE, FeatureType.STATE)}
        if self.has_env_state:
            env = inputs.pop(0)
            batch[OBS_ENV_STATE] = apply_normalization(self.normalizer, env, OBS_ENV_STATE, FeatureType.ENV)
        prefix = prefix_len = None
        if self.has_prefix:
            prefix_len = inputs.pop()
            prefix = apply_normalization(self.unnormalizer, inputs.pop(), ACTION, FeatureType.ACTION)
        noise = inputs.pop()
        if self.camera_keys:
            images = [
                apply_normalization(self.normalizer, img.to(torch.float32) / 255.0, key, FeatureType.VISUAL)
                for key, img in zip(self.camera_keys, inputs, strict=True)
            ]
            batch[OBS_IMAGES] = torch.stack(images, dim=2)
        actions = self.policy.model.generate_actions(batch, noise=noise, prefix=prefix, prefix_len=prefix_len)
        return apply_normalization(self.unnormalizer, actions, ACTION, FeatureType.ACTION, inverse=True)


def unnormalize_action(ckpt: LoadedCheckpoint, actions: Tensor) -> Tensor:
    """The policy's normalized units → robot units (LeRobot's own unnormalizer)."""
    return apply_normalization(ckpt.unnormalizer, actions, ACTION, FeatureType.ACTION, inverse=True)


def action_affine(ckpt: LoadedCheckpoint, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale) per action dimension with robot = offset + scale * normalized (LeRobot's
    unnormalizer, probed at 0 and 1). A dimension that never moved in the training data has scale 0."""
    zero = unnormalize_action(ckpt, torch.zeros(1, dim)).numpy()[0]
    one = unnormalize_action(ckpt, torch.ones(1, dim)).numpy()[0]
    return zero, one - zero
