"""Small DriftConfigs and batches for fast CPU tests."""

import torch
from lerobot.configs.types import FeatureType, PolicyFeature

from lerobot_policy_drift.drift import DriftConfig

STATE_DIM, ACTION_DIM, IMAGE_SHAPE = 6, 6, (3, 32, 32)


def small_config(cameras: int = 0, env_state: bool = False, **overrides) -> DriftConfig:
    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (STATE_DIM,))}
    for i in range(cameras):
        inputs[f"observation.images.cam{i}"] = PolicyFeature(FeatureType.VISUAL, IMAGE_SHAPE)
    if env_state:
        inputs["observation.environment_state"] = PolicyFeature(FeatureType.ENV, (4,))
    kwargs = dict(
        input_features=inputs,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))},
        down_dims=(16, 32),
        spatial_softmax_num_keypoints=8,
        device="cpu",
    )
    kwargs.update(overrides)
    return DriftConfig(**kwargs)


def random_batch(config: DriftConfig, batch_size: int = 3) -> dict[str, torch.Tensor]:
    s = config.n_obs_steps
    batch = {"observation.state": torch.randn(batch_size, s, STATE_DIM)}
    for key in config.image_features:
        batch[key] = torch.rand(batch_size, s, *IMAGE_SHAPE)
    if config.env_state_feature:
        batch["observation.environment_state"] = torch.randn(batch_size, s, 4)
    batch["action"] = torch.rand(batch_size, config.horizon, ACTION_DIM) * 2 - 1
    batch["action_is_pad"] = torch.zeros(batch_size, config.horizon, dtype=torch.bool)
    return batch


def overfit(policy, batch: dict[str, torch.Tensor], steps: int = 300, lr: float = 3e-3) -> list[dict]:
    """Train ``policy`` on one batch with Adam; every step's loss must be finite. The metrics per step."""
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        loss, metrics = policy.forward(batch)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(metrics)
    return history
