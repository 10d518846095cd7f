"""The policies the benchmarks compare, built on identical backbones and trained on identical data.

* ``drift``: DriftPolicy, 1 network call per chunk.
* ``drift_prefix``: the same, trained with prefix conditioning (``prefix_conditioning=True``):
  it also learns to continue a committed prefix of 0..4 actions; sampled here without one.
* ``drift_g1`` / ``drift_mixed``: negative controls that a correct drifting loss must fail
  (G = 1 degenerates to regression; one group for the whole batch ignores the observation).
* ``regression``: the same U-Net fed zero noise and trained with MSE (deterministic BC).
* ``dp100`` / ``dp10``: LeRobot's DiffusionPolicy (same U-Net widths), sampled with 100 DDPM
  steps or 10 DDIM steps from one trained model.

Training works in normalized units on tensors (the toy tasks are already in [-1, 1]), so every
method sees exactly the same batches in the same order.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy, _make_noise_scheduler

from lerobot_policy_drift.drift import DriftConfig, DriftPolicy
from lerobot_policy_drift.drift.objective import drift_loss
from lerobot_policy_drift.drift.timing import round_robin

METHODS = ("drift", "drift_prefix", "drift_g1", "drift_mixed", "regression", "dp100", "dp10")


def toy_features(state_dim: int = 2, action_dim: int = 2) -> dict:
    """State given twice (as state and environment state): DiffusionPolicy needs one of image/env."""
    return dict(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (state_dim,)),
            "observation.environment_state": PolicyFeature(FeatureType.ENV, (state_dim,)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (action_dim,))},
    )


@dataclass
class Trained:
    """A trained policy behind one call: observation batch → executed chunk [B, n_action_steps, D]."""

    name: str
    policy: torch.nn.Module
    act: Callable[[dict], torch.Tensor]
    nfe: int


def build(method: str, down_dims: tuple[int, ...], horizon: int = 16, n_obs_steps: int = 2, **feats):
    """An untrained policy for ``method`` with the shared backbone sizes."""
    feats = feats or toy_features()
    common = dict(
        horizon=horizon, n_obs_steps=n_obs_steps, n_action_steps=8, down_dims=down_dims, device="cpu"
    )
    if method.startswith("dp"):
        return DiffusionPolicy(DiffusionConfig(**feats, **common, pretrained_backbone_weights=None))
    g = 1 if method == "drift_g1" else 4
    prefix = method == "drift_prefix"
    return DriftPolicy(DriftConfig(**feats, **common, num_samples_per_obs=g, prefix_conditioning=prefix))


def loss_fn(method: str, policy) -> Callable[[dict], torch.Tensor]:
    """The training loss of ``method`` on a normalized batch."""
    if method == "drift_mixed":
        return lambda batch: _mixed_group_loss(policy, batch)
    if method == "regression":
        return lambda batch: _regression_loss(policy, batch)
    return lambda batch: policy.forward(batch)[0]


def _mixed_group_loss(policy: DriftPolicy, batch: dict) -> torch.Tensor:
    """Wrong on purpose: every expert chunk is a positive for every generated chunk."""
    model, cfg = policy.model, policy.config
    expert = batch["action"]
    b, t, d = expert.shape
    g = cfg.num_samples_per_obs
    cond = model.encode(batch).repeat_interleave(g, 0)
    gen = model.generate(cond, model.sample_noise(b * g, expert.device, expert.dtype))
    loss, _ = drift_loss(gen.reshape(1, b * g, t * d), expert.reshape(1, b, t * d), cfg.temperatures)
    return loss.mean()


def _regression_loss(policy: DriftPolicy, batch: dict) -> torch.Tensor:
    model = policy.model
    expert = batch["action"]
    pred = model.generate(model.encode(batch), torch.zeros_like(expert))
    return torch.nn.functional.mse_loss(pred, expert)


def actor(method: str, policy) -> Trained:
    """Wrap a trained policy as a batch → executed-chunk function for evaluation."""
    policy.eval()
    if method == "regression":
        model, cfg = policy.model, policy.config

        def act(batch):
            noise = torch.zeros(len(batch["observation.state"]), cfg.horizon, model.action_dim)
            chunk = model.generate(model.encode(batch), noise)
            return chunk[:, cfg.n_obs_steps - 1 :][:, : cfg.n_action_steps]

        return Trained(method, policy, act, nfe=1)
    if method.startswith("dp"):
        steps = 100 if method == "dp100" else 10
        _set_dp_sampler(policy, steps)
        return Trained(method, policy, lambda b: policy.diffusion.generate_actions(b), nfe=steps)
    return Trained(method, policy, lambda b: policy.model.generate_actions(b), nfe=1)


def _set_dp_sampler(policy: DiffusionPolicy, steps: int) -> None:
    """DDPM for the full 100-step chain, DDIM for 10 steps (the usual fast sampler), same weights."""
    cfg = policy.config
    policy.diffusion.noise_scheduler = _make_noise_scheduler(
        "DDPM" if steps == cfg.num_train_timesteps else "DDIM",
        num_train_timesteps=cfg.num_train_timesteps,
        beta_start=cfg.beta_start,
        beta_end=cfg.beta_end,
        beta_schedule=cfg.beta_schedule,
        clip_sample=cfg.clip_sample,
        clip_sample_range=cfg.clip_sample_range,
        prediction_type=cfg.prediction_type,
    )
    policy.diffusion.num_inference_steps = steps


def train(method: str, batches: list[dict], down_dims, lr: float = 1e-3, seed: int = 0) -> Trained:
    """Train ``method`` on the given batches (one optimizer step each) and return its actor."""
    torch.manual_seed(seed)
    policy = build(method, down_dims)
    policy.train()
    step = loss_fn(method, policy)
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=1e-6)
    for batch in batches:
        loss = step(batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
    return actor(method, policy)


@torch.no_grad()
def time_per_chunk(trained: Trained, batch: dict, repeats: int = 20) -> float:
    """Median wall time (s) of one chunk at batch 1, after one warm-up call."""
    one = {k: v[:1] for k, v in batch.items()}
    return round_robin({"chunk": lambda: trained.act(one)}, repeats)["chunk"]["p50_ms"] / 1000
