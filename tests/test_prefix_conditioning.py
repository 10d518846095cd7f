"""Prefix conditioning: a chunk that continues the committed actions, in LeRobot's RTC contract."""

import json

import pytest
import torch
from lerobot.rollout.inference.rtc import supports_rtc_inference

from lerobot_policy_drift.drift import DriftConfig, DriftPolicy
from tests.helpers import ACTION_DIM, overfit, random_batch, small_config


def _prefixed(**overrides) -> DriftPolicy:
    return DriftPolicy(small_config(prefix_conditioning=True, **overrides)).eval()


def test_rtc_support_follows_the_checkpoint():
    assert supports_rtc_inference(_prefixed())
    plain = DriftPolicy(small_config()).eval()
    assert not supports_rtc_inference(plain)
    batch = random_batch(plain.config, 1)
    with pytest.raises(ValueError, match="without prefix_conditioning"):
        plain.predict_action_chunk(batch, inference_delay=2, prev_chunk_left_over=torch.zeros(8, ACTION_DIM))
    # LeRobot's non-RTC callers pass neither: unchanged behaviour.
    noise = torch.randn(1, plain.config.horizon, ACTION_DIM)
    torch.testing.assert_close(
        plain.predict_action_chunk(batch, noise=noise, inference_delay=0, prev_chunk_left_over=None),
        plain.predict_action_chunk(batch, noise=noise),
    )


@pytest.mark.parametrize("delay", [1, 3, 4, 6])
@pytest.mark.parametrize("left_over_dims", [2, 3])
def test_the_first_returned_actions_are_the_committed_ones(delay, left_over_dims):
    policy = _prefixed(max_prefix_steps=4)
    batch = random_batch(policy.config, 2)
    left = torch.rand(10, ACTION_DIM) * 2 - 1  # LeRobot pads the left-over to the execution horizon
    given = left if left_over_dims == 2 else left[None].expand(2, -1, -1)
    chunk = policy.predict_action_chunk(batch, inference_delay=delay, prev_chunk_left_over=given)
    assert chunk.shape == (2, policy.config.n_action_steps, ACTION_DIM)
    d = min(delay, 4)
    torch.testing.assert_close(chunk[:, :d], left[None, :d].expand(2, -1, -1))
    assert not torch.allclose(chunk[:, d], left[None, d].expand(2, -1))


def test_a_short_left_over_commits_only_what_it_holds():
    policy = _prefixed(max_prefix_steps=4)
    batch = random_batch(policy.config, 1)
    left = torch.rand(2, ACTION_DIM)
    chunk = policy.predict_action_chunk(batch, inference_delay=4, prev_chunk_left_over=left)
    torch.testing.assert_close(chunk[0, :2], left)


def test_the_prefix_changes_the_free_steps_and_its_length_is_seen():
    """The free steps depend on the given actions and on how many are given (the FiLM code)."""
    policy = _prefixed(max_prefix_steps=4)
    batch = random_batch(policy.config, 1)
    noise = torch.randn(1, policy.config.horizon, ACTION_DIM)
    left = torch.rand(6, ACTION_DIM)

    def free_step(delay, values):
        return policy.predict_action_chunk(
            batch, noise=noise, inference_delay=delay, prev_chunk_left_over=values
        )[0, 4]

    assert not torch.allclose(free_step(2, left), free_step(2, -left))
    assert not torch.allclose(free_step(2, left), free_step(3, left))


def test_training_learns_to_continue_the_given_prefix():
    """Overfitting 4 observations whose expert chunks are all consistent: with the expert's own
    first actions given, the generated free steps converge onto the expert's."""
    cfg = small_config(prefix_conditioning=True, max_prefix_steps=3)
    torch.manual_seed(0)
    policy = DriftPolicy(cfg)
    batch = random_batch(cfg, batch_size=4)
    overfit(policy, batch)
    policy.eval()
    start = cfg.n_obs_steps - 1
    expert = batch["action"][:, start : start + cfg.n_action_steps]
    chunk = policy.predict_action_chunk(batch, inference_delay=2, prev_chunk_left_over=expert)
    torch.testing.assert_close(chunk[:, :2], expert[:, :2])
    free_rms = (chunk[:, 2:] - expert[:, 2:]).square().mean().sqrt()
    assert free_rms < 0.2, free_rms


def test_old_checkpoints_load_without_the_new_fields(tmp_path):
    policy = DriftPolicy(small_config()).eval()
    batch = random_batch(policy.config, 1)
    noise = torch.randn(1, policy.config.horizon, ACTION_DIM)
    expected = policy.predict_action_chunk(batch, noise=noise)
    policy.save_pretrained(tmp_path)
    config_file = tmp_path / "config.json"
    saved = json.loads(config_file.read_text())
    for key in ("prefix_conditioning", "max_prefix_steps"):
        saved.pop(key)
    config_file.write_text(json.dumps(saved))
    loaded = DriftPolicy.from_pretrained(tmp_path).eval()
    assert not loaded.config.prefix_conditioning and not loaded.supports_rtc()
    assert torch.equal(loaded.predict_action_chunk(batch, noise=noise), expected)


def test_prefixed_checkpoint_round_trips(tmp_path):
    policy = _prefixed()
    batch = random_batch(policy.config, 1)
    noise = torch.randn(1, policy.config.horizon, ACTION_DIM)
    left = torch.rand(8, ACTION_DIM)
    expected = policy.predict_action_chunk(batch, noise=noise, inference_delay=2, prev_chunk_left_over=left)
    policy.save_pretrained(tmp_path)
    loaded = DriftPolicy.from_pretrained(tmp_path).eval()
    assert loaded.supports_rtc()
    got = loaded.predict_action_chunk(batch, noise=noise, inference_delay=2, prev_chunk_left_over=left)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("bad", [0, 8, 9])
def test_max_prefix_must_leave_a_free_executed_step(bad):
    with pytest.raises(ValueError, match="max_prefix_steps"):
        small_config(prefix_conditioning=True, max_prefix_steps=bad)
    assert not DriftConfig.__dataclass_fields__["prefix_conditioning"].default


def test_frames_passed_one_at_a_time_build_the_observation_history():
    """LeRobot's RTC engine hands predict_action_chunk one frame per chunk (no time axis): the
    policy queues them, so with n_obs_steps = 2 the chunk sees the last two frames."""
    policy = _prefixed(cameras=1)
    batch = random_batch(policy.config, 1)
    frames = [{k: v[:, i] for k, v in batch.items() if k.startswith("observation")} for i in range(2)]
    noise = torch.randn(1, policy.config.horizon, ACTION_DIM)
    left = torch.rand(8, ACTION_DIM)
    expected = policy.predict_action_chunk(batch, noise=noise, inference_delay=1, prev_chunk_left_over=left)
    policy.reset()
    policy.predict_action_chunk(frames[0], noise=noise)
    got = policy.predict_action_chunk(frames[1], noise=noise, inference_delay=1, prev_chunk_left_over=left)
    torch.testing.assert_close(got, expected)
