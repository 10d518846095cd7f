"""DriftConfig: offline defaults, registration, and errors that name the field and the range."""

import pytest
from lerobot.configs import PreTrainedConfig

from lerobot_policy_drift.drift import DriftConfig
from tests.helpers import small_config


def test_registered_under_drift_with_offline_defaults():
    assert PreTrainedConfig.get_choice_class("drift") is DriftConfig
    cfg = DriftConfig()
    assert cfg.pretrained_backbone_weights is None and cfg.use_group_norm
    assert cfg.num_samples_per_obs == 4 and cfg.temperatures == (0.02, 0.05, 0.2)
    assert cfg.chunk_representation == "flat" and cfg.noise_scale == 1.0
    assert not cfg.push_to_hub
    assert cfg.action_delta_indices == list(range(-1, 15))


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("n_obs_steps", 0, "≥ 1"),
        ("horizon", 10, "multiple of 4"),
        ("n_action_steps", 16, "[1, horizon - n_obs_steps + 1 = 15]"),
        ("num_samples_per_obs", 0, "≥ 1"),
        ("temperatures", (), "non-empty"),
        ("temperatures", (0.02, -1.0), "positive"),
        ("chunk_representation", "flattened", "one of ('flat', 'per_timestep', 'both')"),
        ("noise_scale", -0.5, "≥ 0"),
        ("vision_backbone", "vit_b_16", "ResNet"),
        ("vision_backbone_stages", 5, "1, 2, 3 or 4"),
        ("crop_shape", (0, 84), "positive"),
        ("kernel_size", 4, "odd"),
        ("n_groups", 3, "divisor"),
        ("down_dims", (), "non-empty"),
        ("spatial_softmax_num_keypoints", 0, "≥ 1"),
        ("optimizer_lr", 0.0, "> 0"),
        ("drop_n_last_frames", -1, "≥ 0"),
        ("expert_proximal_weight", -1.0, "≥ 0"),
        ("expert_proximal_sigma", -0.1, "≥ 0"),
        ("expert_proximal_t", 0.0, "in (0, 1]"),
    ],
)
def test_invalid_values_name_the_field_and_the_allowed_range(field, value, allowed):
    with pytest.raises(ValueError) as err:
        DriftConfig(**{field: value})
    assert f"DriftConfig.{field}" in str(err.value)
    assert allowed in str(err.value)


def test_pretrained_weights_with_group_norm_is_refused():
    with pytest.raises(ValueError, match="use_group_norm"):
        DriftConfig(pretrained_backbone_weights="ResNet18_Weights.IMAGENET1K_V1")


def test_crop_larger_than_the_images_is_refused_when_features_are_known():
    cfg = small_config(cameras=1, crop_shape=(64, 64))
    with pytest.raises(ValueError, match="crop_shape"):
        cfg.validate_features()


def test_optimizer_preset_carries_the_drift_recipe():
    opt = DriftConfig().get_optimizer_preset()
    assert opt.lr == 1e-4 and opt.betas == (0.95, 0.999) and opt.grad_clip_norm == 1.0
