"""DriftPolicy / DriftModel: shapes, one network call per chunk, determinism, save/load, learning."""

import pytest
import torch

from lerobot_policy_drift.drift import DriftPolicy
from tests.helpers import ACTION_DIM, overfit, random_batch, small_config

LAYOUTS = {
    "state_only": dict(cameras=0),
    "state_1_camera": dict(cameras=1),
    "state_2_cameras": dict(cameras=2),
    "state_2_cameras_shared_encoder": dict(cameras=2, use_separate_rgb_encoder_per_camera=False),
    "env_state": dict(env_state=True),
    "state_1_camera_2_backbone_stages": dict(cameras=1, vision_backbone_stages=2),
}


def _observation(config, batch_size=2):
    """One time step as a robot would deliver it (no time axis)."""
    batch = random_batch(config, batch_size)
    return {k: v[:, -1] for k, v in batch.items() if k.startswith("observation")}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("n_obs_steps", [1, 2])
def test_shapes_for_every_observation_layout(layout, n_obs_steps):
    cfg = small_config(n_obs_steps=n_obs_steps, **LAYOUTS[layout])
    policy = DriftPolicy(cfg)
    loss, metrics = policy.forward(random_batch(cfg))
    assert loss.ndim == 0 and torch.isfinite(loss)
    per_sample, _ = policy.forward(random_batch(cfg), reduction="none")
    assert per_sample.shape == (3,)
    assert {"drift_scale", "within_group_std", "best_of_g_rms", "single_sample_rms"} <= metrics.keys()
    assert "force_rms_tau0.05" in metrics

    policy.eval()
    chunk = policy.predict_action_chunk(random_batch(cfg))
    assert chunk.shape == (3, cfg.n_action_steps, ACTION_DIM)
    policy.reset()
    action = policy.select_action(_observation(cfg))
    assert action.shape == (2, ACTION_DIM)


def test_fewer_backbone_stages_give_the_spatial_softmax_a_finer_grid():
    """32×32 images: stride 32 after 4 ResNet stages leaves one cell; after 2 stages, 4×4 cells."""
    sizes = {}
    for stages in (4, 2):
        encoder = DriftPolicy(small_config(cameras=1, vision_backbone_stages=stages)).model.rgb_encoder[0]
        features = encoder.backbone(torch.zeros(1, 3, 32, 32))
        assert features.shape[-2:] == ((1, 1) if stages == 4 else (4, 4))
        assert encoder(torch.rand(2, 3, 32, 32)).shape == (2, encoder.feature_dim)  # pool rebuilt to match
        sizes[stages] = sum(p.numel() for p in encoder.parameters())
    assert sizes[2] < sizes[4] / 10  # layer3 and layer4 hold most of ResNet-18's weights


def _count_unet_calls(policy):
    calls = []
    policy.model.unet.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_exactly_one_unet_call_per_chunk():
    cfg = small_config(cameras=1)
    policy = DriftPolicy(cfg).eval()
    calls = _count_unet_calls(policy)
    for _ in range(cfg.n_action_steps * 3):
        policy.select_action(_observation(cfg, batch_size=1))
    assert len(calls) == 3
    policy.predict_action_chunk(random_batch(cfg))
    assert len(calls) == 4


def test_training_runs_the_generator_once_for_all_g_samples():
    cfg = small_config(num_samples_per_obs=4)
    policy = DriftPolicy(cfg)
    calls = _count_unet_calls(policy)
    policy.forward(random_batch(cfg, batch_size=5))
    assert len(calls) == 1


def test_the_expert_proximal_probe_adds_one_training_call_at_its_timestep_and_none_at_inference():
    cfg = small_config(cameras=1, expert_proximal_weight=81.0, mask_padding=True)
    policy = DriftPolicy(cfg)
    timesteps = []
    policy.model.unet.register_forward_hook(lambda _m, args, _out: timesteps.append(args[1].tolist()))
    batch = random_batch(cfg, batch_size=5)
    batch["action_is_pad"][:, -3:] = True
    loss, metrics = policy.forward(batch)
    assert timesteps == [[0] * 5 * cfg.num_samples_per_obs, [90] * 5]
    assert torch.isfinite(loss) and metrics["proximal_loss"] > 0
    loss.backward()
    assert policy.model.rgb_encoder[0].parameters().__next__().grad is not None
    timesteps.clear()
    policy.eval().predict_action_chunk(random_batch(cfg, batch_size=1))
    assert timesteps == [[0]]


def test_given_noise_is_deterministic_and_fresh_noise_varies():
    cfg = small_config(cameras=1)
    policy = DriftPolicy(cfg).eval()
    batch = random_batch(cfg)
    noise = torch.randn(3, cfg.horizon, ACTION_DIM)
    a = policy.predict_action_chunk(batch, noise=noise)
    b = policy.predict_action_chunk(batch, noise=noise.clone())
    assert torch.equal(a, b)
    c = policy.predict_action_chunk(batch)
    d = policy.predict_action_chunk(batch)
    assert not torch.equal(c, d)


def test_noise_scale_multiplies_given_noise():
    cfg = small_config()
    policy = DriftPolicy(cfg).eval()
    batch = random_batch(cfg)
    noise = torch.randn(3, cfg.horizon, ACTION_DIM)
    half = policy.predict_action_chunk(batch, noise=noise * 0.5)
    policy.config.noise_scale = 0.5
    assert torch.allclose(policy.predict_action_chunk(batch, noise=noise), half, atol=1e-6)


def test_select_action_plays_the_chunk_in_order():
    cfg = small_config()
    policy = DriftPolicy(cfg).eval()
    obs = _observation(cfg, batch_size=1)
    noise = torch.randn(1, cfg.horizon, ACTION_DIM)
    stacked = {k: v[:, None].expand(-1, cfg.n_obs_steps, *v.shape[1:]) for k, v in obs.items()}
    expected = policy.predict_action_chunk(stacked, noise=noise)[0]
    played = torch.stack([policy.select_action(obs, noise=noise)[0] for _ in range(cfg.n_action_steps)])
    torch.testing.assert_close(played, expected)


def test_save_pretrained_then_from_pretrained_gives_identical_actions(tmp_path):
    cfg = small_config(cameras=2)
    policy = DriftPolicy(cfg).eval()
    batch = random_batch(cfg)
    noise = torch.randn(3, cfg.horizon, ACTION_DIM)
    expected = policy.predict_action_chunk(batch, noise=noise)
    policy.save_pretrained(tmp_path)
    loaded = DriftPolicy.from_pretrained(tmp_path).eval()
    assert loaded.config.num_samples_per_obs == cfg.num_samples_per_obs
    assert torch.equal(loaded.predict_action_chunk(batch, noise=noise), expected)


def test_loss_is_finite_and_fits_a_tiny_batch():
    """Overfitting 4 observations: the generated chunks converge onto their expert chunks.

    The drifting loss itself stays near |F|² ≈ 3 by construction (the field is normalized),
    so progress is measured as the distance of a sample to its expert, not as the loss value.
    """
    cfg = small_config(optimizer_lr=3e-3)
    policy = DriftPolicy(cfg)
    history = overfit(policy, random_batch(cfg, batch_size=4))
    assert history[-1]["single_sample_rms"] < 0.3 * history[0]["single_sample_rms"]


def test_the_proximal_term_pulls_the_probe_onto_the_expert():
    cfg = small_config(expert_proximal_weight=81.0)
    history = overfit(DriftPolicy(cfg), random_batch(cfg, batch_size=4), steps=60)
    assert history[-1]["proximal_loss"] < 0.3 * history[0]["proximal_loss"]


def test_generator_is_noise_sensitive_at_init():
    """The noise skip: samples for one observation start spread over the action range (no collapse)."""
    cfg = small_config()
    _, metrics = DriftPolicy(cfg).forward(random_batch(cfg, batch_size=8))
    assert metrics["within_group_std"] > 0.5
    _, metrics = DriftPolicy(small_config(noise_skip=False)).forward(random_batch(cfg, batch_size=8))
    assert metrics["within_group_std"] < 0.3


def test_padding_mask_keeps_padded_actions_out_of_the_loss():
    """With mask_padding the copy-padded actions past an episode's end cannot move the loss;
    without it they do."""
    batch = random_batch(small_config())
    batch["action_is_pad"][:, -5:] = True
    moved = {k: v.clone() for k, v in batch.items()}
    moved["action"][:, -5:] += 10.0  # only the padded steps change

    def loss(mask_padding: bool, b: dict) -> torch.Tensor:
        torch.manual_seed(0)  # the same policy weights and the same noise draws
        policy = DriftPolicy(small_config(mask_padding=mask_padding, chunk_representation="both"))
        torch.manual_seed(1)
        return policy.forward(b)[0]

    masked = loss(True, batch)
    masked.backward()
    assert torch.isfinite(masked)
    torch.testing.assert_close(loss(True, moved), masked.detach())
    assert not torch.allclose(loss(False, moved), loss(False, batch))
