"""Weight averaging: the decay's warm-up, the average itself, and a DriftPolicy checkpoint that
carries the averaged weights while training goes on with its own."""

import pytest
import torch
from torch import nn

from lerobot_policy_drift.drift import DriftPolicy
from lerobot_policy_drift.drift.ema import WeightAverage, ema_decay
from tests.helpers import ACTION_DIM, random_batch, small_config


def test_decay_warms_up_as_diffusion_policy_evaluates():
    assert ema_decay(0, 0.75, 0.9999) == 0.0  # the first update copies the weights
    assert ema_decay(99, 0.75, 0.9999) == pytest.approx(1 - 100**-0.75)
    assert ema_decay(1999, 0.75, 0.9999) == pytest.approx(0.99666, abs=1e-5)
    assert ema_decay(10**7, 0.75, 0.9999) == 0.9999


def test_the_average_follows_the_recurrence_and_swaps_in_and_out():
    net = nn.Linear(2, 1)
    ema = WeightAverage(net, power=1.0, max_decay=0.5)
    expected = net.weight.detach().clone()
    for step in range(4):
        with torch.no_grad():
            net.weight.add_(1.0)
        ema.update(net)
        decay = min(0.5, 1 - 1 / (1 + step))
        expected = decay * expected + (1 - decay) * net.weight.detach()
    torch.testing.assert_close(ema.shadow["weight"], expected)
    live = net.weight.detach().clone()
    with ema.swapped_in(net):
        torch.testing.assert_close(net.weight.detach(), expected)
    torch.testing.assert_close(net.weight.detach(), live)


def _train_steps(policy, steps: int = 3) -> None:
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.1)
    batch = random_batch(policy.config, batch_size=4)
    for _ in range(steps):
        loss, _ = policy.forward(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        policy.update()  # what lerobot-train calls after each optimizer step


@pytest.mark.parametrize("use_ema", [False, True])
def test_a_checkpoint_holds_the_average_and_training_keeps_its_weights(tmp_path, use_ema):
    torch.manual_seed(0)
    policy = DriftPolicy(small_config(use_ema=use_ema))
    _train_steps(policy)
    live = {k: v.clone() for k, v in policy.state_dict().items()}
    policy.save_pretrained(tmp_path)
    assert all(torch.equal(v, live[k]) for k, v in policy.state_dict().items())  # unchanged by saving
    loaded = DriftPolicy.from_pretrained(tmp_path).eval()
    assert loaded.config.use_ema is use_ema
    saved = loaded.state_dict()
    differs = any(not torch.equal(saved[k], live[k]) for k in live)
    assert differs is use_ema
    if use_ema:
        for key, value in policy._ema.shadow.items():
            torch.testing.assert_close(saved[f"model.{key}"], value)
        batch = random_batch(policy.config, batch_size=2)
        noise = torch.randn(2, policy.config.horizon, ACTION_DIM)
        assert not torch.allclose(
            loaded.predict_action_chunk(batch, noise=noise),
            policy.eval().predict_action_chunk(batch, noise=noise),
        )


def test_bad_ema_settings_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="ema_max_decay"):
        small_config(use_ema=True, ema_max_decay=1.0)
