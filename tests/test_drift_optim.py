"""The drift policy's AdamW preset: torch's fused kernel on CPU, the same update as torch's default."""

import draccus
import pytest
import torch
from lerobot.optim.optimizers import OptimizerConfig

from lerobot_policy_drift.drift import DriftPolicy
from lerobot_policy_drift.drift.optim import DriftAdamWConfig
from tests.helpers import random_batch, small_config


def _trained_weights(fused: bool, steps: int = 5) -> tuple[torch.optim.Optimizer, dict]:
    torch.manual_seed(0)
    config = small_config(cameras=1, optimizer_fused=fused, optimizer_lr=1e-3)
    policy = DriftPolicy(config)
    optimizer = config.get_optimizer_preset().build(policy.get_optim_params())
    batch = random_batch(config, batch_size=4)
    for step in range(steps):
        torch.manual_seed(100 + step)  # the same generator draws in both runs
        loss, _ = policy.forward(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return optimizer, {k: v.detach().clone() for k, v in policy.state_dict().items()}


def test_the_fused_kernel_takes_the_same_steps_as_torchs_default():
    fused_opt, fused = _trained_weights(fused=True)
    plain_opt, plain = _trained_weights(fused=False)
    assert fused_opt.defaults["fused"] is True and not plain_opt.defaults["fused"]
    moved = [k for k in plain if plain[k].is_floating_point() and plain[k].numel() > 0]
    initial = _trained_weights(fused=False, steps=0)[1]
    assert any(not torch.equal(plain[k], initial[k]) for k in moved)  # the steps changed the weights
    for key in moved:
        torch.testing.assert_close(fused[key], plain[key], rtol=1e-5, atol=1e-6)


def test_parameters_on_a_device_without_the_kernel_get_torchs_choice():
    weight = torch.nn.Parameter(torch.ones(3, dtype=torch.float64).to("meta"))
    optimizer = DriftAdamWConfig(lr=1e-3).build([{"params": [weight]}])
    assert not optimizer.defaults["fused"]


@pytest.mark.parametrize("fused", [True, False])
def test_the_preset_round_trips_through_lerobots_config_files(fused):
    """lerobot-train saves the preset in train_config.json and parses it back on --resume."""
    preset = small_config(optimizer_fused=fused).get_optimizer_preset()
    saved = {"type": preset.type, **draccus.encode(preset)}  # as train_config.json holds it
    assert saved["type"] == "drift_adamw" and saved["fused"] is fused
    assert draccus.decode(OptimizerConfig, saved) == preset


def test_the_noise_gain_trains_at_its_own_multiple_of_the_learning_rate():
    """One AdamW step moves a parameter by about its group's rate: the gain, at 10×, ten times as far."""
    config = small_config(cameras=1, optimizer_lr=1e-3, noise_gain_lr_scale=10, optimizer_weight_decay=0)
    policy = DriftPolicy(config)
    optimizer = config.get_optimizer_preset().build(policy.get_optim_params())
    gain = policy.model.noise_gain
    assert [(len(g["params"]), g["lr"]) for g in optimizer.param_groups] == [
        (len(list(policy.parameters())) - 1, 1e-3),
        (1, pytest.approx(1e-2)),
    ]
    assert optimizer.param_groups[1]["params"][0] is gain
    loss, _ = policy.forward(random_batch(config, batch_size=4))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert abs(gain.item() - 1.0) == pytest.approx(1e-2, rel=1e-3)  # Adam's first step: lr · sign(g)
    same = small_config(cameras=1, noise_gain_lr_scale=1)  # the checkpoints trained before the option
    assert len(same.get_optimizer_preset().build(DriftPolicy(same).get_optim_params()).param_groups) == 1
    assert small_config().noise_gain_lr_scale == 10  # the default (BENCHMARKS §7.7)


def test_a_non_positive_noise_gain_rate_is_refused_by_name():
    with pytest.raises(ValueError, match="noise_gain_lr_scale"):
        small_config(noise_gain_lr_scale=0)
