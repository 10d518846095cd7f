"""DriftPolicy: Diffusion Policy's encoder and U-Net, trained as a one-step drifting generator.

The network blocks are LeRobot's own (imported, not copied): ``DiffusionRgbEncoder``
(ResNet + SpatialSoftmax) and ``DiffusionConditionalUnet1d`` (FiLM-conditioned 1D U-Net).
The U-Net is called once per chunk with the timestep fixed at 0: noise chunk in, action
chunk out (an optional training-only probe uses another timestep, see ``_proximal_loss``).
Training uses the drifting objective in :mod:`drift.objective`.
"""

from collections import deque

import torch
from lerobot.policies.diffusion.modeling_diffusion import (
    DiffusionConditionalUnet1d,
    DiffusionRgbEncoder,
    SpatialSoftmax,
)
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.policies.utils import populate_queues
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE
from torch import Tensor, nn

from .configuration_drift import DriftConfig
from .ema import WeightAverage
from .objective import drift_loss, neighbour_metric, proximal_loss

PROBE_TIMESTEPS = 100  # the step embedding's scale for the probe's t in (0, 1] (DP trains 100 steps)


def stack_camera_images(batch: dict[str, Tensor], config: DriftConfig) -> dict[str, Tensor]:
    """Add ``observation.images`` [..., n_cameras, C, H, W] stacked in the config's camera order."""
    if not config.image_features:
        return batch
    batch = dict(batch)
    batch[OBS_IMAGES] = torch.stack([batch[key] for key in config.image_features], dim=-4)
    return batch


def make_rgb_encoder(config: DriftConfig) -> DiffusionRgbEncoder:
    """LeRobot's ResNet + SpatialSoftmax encoder, cut after ``config.vision_backbone_stages`` stages.

    The backbone is ``conv1, norm, relu, maxpool, layer1..layer4``; keeping fewer layers only
    changes the feature map the spatial softmax sees, so the pooling is rebuilt for its shape.
    """
    encoder = DiffusionRgbEncoder(config)
    if config.vision_backbone_stages < 4:
        encoder.backbone = encoder.backbone[: 4 + config.vision_backbone_stages]
        height, width = config.crop_shape or next(iter(config.image_features.values())).shape[1:]
        with torch.no_grad():
            feature_map = encoder.backbone(torch.zeros(1, 3, height, width)).shape[1:]
        encoder.pool = SpatialSoftmax(feature_map, num_kp=config.spatial_softmax_num_keypoints)
    return encoder


class DriftModel(nn.Module):
    """Observation encoder + one-step generator; knows nothing about queues or processors."""

    def __init__(self, config: DriftConfig):
        super().__init__()
        self.config = config
        cond_dim = config.robot_state_feature.shape[0]
        n_cameras = len(config.image_features)
        if n_cameras:
            n_encoders = n_cameras if config.use_separate_rgb_encoder_per_camera else 1
            self.rgb_encoder = nn.ModuleList(make_rgb_encoder(config) for _ in range(n_encoders))
            cond_dim += self.rgb_encoder[0].feature_dim * n_cameras
        if config.env_state_feature:
            cond_dim += config.env_state_feature.shape[0]
        self.global_cond_dim = cond_dim * config.n_obs_steps
        # A committed prefix adds its length (a thermometer code) to the FiLM conditioning.
        self.prefix_steps = config.max_prefix_steps if config.prefix_conditioning else 0
        self.unet = DiffusionConditionalUnet1d(
            config, global_cond_dim=self.global_cond_dim + self.prefix_steps
        )
        # Learnable gain of the noise skip (see DriftConfig.noise_skip): 1 at init, free to shrink.
        self.noise_gain = nn.Parameter(torch.ones(1)) if config.noise_skip else None

    @property
    def action_dim(self) -> int:
        return self.config.action_feature.shape[0]

    def encode(self, batch: dict[str, Tensor]) -> Tensor:
        """Global conditioning [B, n_obs_steps * per-step features] from normalized observations."""
        state = batch[OBS_STATE]
        b, s = state.shape[:2]
        features = [state]
        if self.config.image_features:
            images = batch[OBS_IMAGES]  # [B, S, N, C, H, W]
            if len(self.rgb_encoder) == 1:
                feats = self.rgb_encoder[0](images.flatten(0, 2)).reshape(b, s, -1)
            else:
                per_cam = [enc(images[:, :, i].flatten(0, 1)) for i, enc in enumerate(self.rgb_encoder)]
                feats = torch.stack(per_cam, dim=2).reshape(b, s, -1)
            features.append(feats)
        if self.config.env_state_feature:
            features.append(batch[OBS_ENV_STATE])
        return torch.cat(features, dim=-1).flatten(start_dim=1)

    def given_steps(self, prefix_len: Tensor) -> Tensor:
        """[B, horizon] bool: the chunk positions a prefix of ``prefix_len`` [B] actions fills.

        The prefix starts at the current step (position n_obs_steps - 1), where the executed
        slice starts: its actions are the first ones the arm executes from this chunk's time on.
        """
        position = torch.arange(self.config.horizon, device=prefix_len.device)
        start = self.config.n_obs_steps - 1
        return (position >= start) & (position < start + prefix_len[:, None])

    def generate(
        self,
        global_cond: Tensor,
        noise: Tensor,
        prefix: Tensor | None = None,
        prefix_len: Tensor | None = None,
        timestep: int = 0,
    ) -> Tensor:
        """One U-Net call: noise chunk [B, horizon, action_dim] → normalized action chunk.

        ``timestep`` feeds the U-Net's step embedding: 0 everywhere but the expert-proximal
        probe of training (see DriftConfig.expert_proximal_weight).

        With prefix conditioning, ``prefix`` [B, max_prefix_steps, action_dim] (normalized) and
        ``prefix_len`` [B] (int, 0..max_prefix_steps) give the committed first actions: they
        replace the noise at their positions, their count joins the FiLM conditioning, and the
        output holds them unchanged. Without a prefix the policy acts as if d = 0.
        """
        timestep = torch.full((noise.shape[0],), timestep, dtype=torch.long, device=noise.device)
        if self.prefix_steps:
            b, horizon, _ = noise.shape
            if prefix is None:
                prefix = noise.new_zeros(b, self.prefix_steps, noise.shape[-1])
                prefix_len = torch.zeros(b, dtype=torch.long, device=noise.device)
            code = (torch.arange(self.prefix_steps, device=noise.device) < prefix_len[:, None]).to(
                noise.dtype
            )
            start = self.config.n_obs_steps - 1
            placed = nn.functional.pad(
                prefix * code[..., None], (0, 0, start, horizon - start - self.prefix_steps)
            )
            given = self.given_steps(prefix_len)[..., None]
            noise = torch.where(given, placed, noise)
            global_cond = torch.cat([global_cond, code], dim=-1)
        out = self.unet(noise, timestep, global_cond=global_cond)
        out = out if self.noise_gain is None else out + self.noise_gain * noise
        return torch.where(given, placed, out) if self.prefix_steps else out

    def sample_noise(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        shape = (batch_size, self.config.horizon, self.action_dim)
        return torch.randn(shape, device=device, dtype=dtype)

    def generate_actions(
        self,
        batch: dict[str, Tensor],
        noise: Tensor | None = None,
        prefix: Tensor | None = None,
        prefix_len: Tensor | None = None,
    ) -> Tensor:
        """The ``n_action_steps`` actions to execute, [B, n_action_steps, action_dim] (normalized).

        ``noise`` is a N(0, I) draw (fresh per chunk when not given); it is multiplied by
        ``config.noise_scale`` here so a caller-given draw means the same as an internal one.
        ``prefix``/``prefix_len``: the committed first actions (see :meth:`generate`); the
        returned chunk starts with them.
        """
        global_cond = self.encode(batch)
        if noise is None:
            noise = self.sample_noise(global_cond.shape[0], global_cond.device, global_cond.dtype)
        chunk = self.generate(global_cond, noise * self.config.noise_scale, prefix, prefix_len)
        start = self.config.n_obs_steps - 1
        return chunk[:, start : start + self.config.n_action_steps]

    def compute_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Per-observation drifting loss [B] and the diagnostics that tell healthy from collapsed."""
        cfg = self.config
        expert = batch[ACTION]  # [B, T, D]
        b, t, d = expert.shape
        g = cfg.num_samples_per_obs
        features = self.encode(batch)
        global_cond = features.repeat_interleave(g, dim=0)
        noise = self.sample_noise(b * g, expert.device, expert.dtype)
        prefix = prefix_len = None
        free = torch.ones(b, t, dtype=torch.bool, device=expert.device)
        if self.prefix_steps:
            # Each example gets its own committed prefix of the expert chunk, 0 included.
            prefix_len = torch.randint(0, self.prefix_steps + 1, (b,), device=expert.device)
            start = cfg.n_obs_steps - 1
            prefix = expert[:, start : start + self.prefix_steps]
            free = ~self.given_steps(prefix_len)
            prefix, prefix_len = prefix.repeat_interleave(g, dim=0), prefix_len.repeat_interleave(g, dim=0)
        generated = self.generate(global_cond, noise, prefix, prefix_len).reshape(b, g, t, d)

        valid = None
        if cfg.mask_padding and "action_is_pad" in batch:
            free = free & ~batch["action_is_pad"]
        if self.prefix_steps or (cfg.mask_padding and "action_is_pad" in batch):
            valid = free.to(expert.dtype)[:, :, None].expand(b, t, d)

        losses, fields = [], []
        if cfg.chunk_representation in ("flat", "both"):
            mask = None if valid is None else valid.reshape(b, t * d)
            loss, field = drift_loss(
                generated.reshape(b, g, t * d), expert.reshape(b, 1, t * d), cfg.temperatures, mask
            )
            losses.append(loss)
            fields.append(field)
        if cfg.chunk_representation in ("per_timestep", "both"):
            step_losses = []
            for step in range(t):
                mask = None if valid is None else valid[:, step]
                loss, field = drift_loss(
                    generated[:, :, step], expert[:, step : step + 1], cfg.temperatures, mask
                )
                step_losses.append(loss)
                fields.append(field)
            losses.append(torch.stack(step_losses).mean(0))
        per_obs_loss = torch.stack(losses).sum(0)
        metrics = self._diagnostics(generated.detach(), expert, fields)
        if cfg.expert_proximal_weight > 0:
            # The probe is called without a prefix: only padding is masked out of its loss.
            padded = batch["action_is_pad"] if cfg.mask_padding and "action_is_pad" in batch else None
            proximal = self._proximal_loss(features, expert, padded)
            metrics["proximal_loss"] = proximal.mean().item()
            per_obs_loss = per_obs_loss + cfg.expert_proximal_weight * proximal
        return per_obs_loss, metrics

    def _proximal_loss(self, features: Tensor, expert: Tensor, padded: Tensor | None) -> Tensor:
        """[B] the expert-proximal term: the generator from expert + σ·ε at the probe's timestep,
        pulled onto the expert under the batch neighbours' per-coordinate metric; ``padded``
        [B, T] (bool) marks copy-padded steps to leave out."""
        cfg = self.config
        b, t, d = expert.shape
        start = expert + cfg.expert_proximal_sigma * torch.randn_like(expert)
        probe = self.generate(features, start, timestep=round(PROBE_TIMESTEPS * cfg.expert_proximal_t))
        mask = (
            None
            if padded is None
            else (~padded)[:, :, None].expand(b, t, d).reshape(b, t * d).to(expert.dtype)
        )
        metric = neighbour_metric(features, expert.reshape(b, t * d), mask)
        return proximal_loss(probe.reshape(b, t * d), expert.reshape(b, t * d), metric, mask)

    @staticmethod
    def _diagnostics(generated: Tensor, expert: Tensor, fields: list) -> dict[str, float]:
        """Scalars for lerobot-train's log: scale and force RMS should settle, spread must stay > 0."""
        rms_to_expert = (generated - expert[:, None]).square().mean(dim=(2, 3)).sqrt()  # [B, G]
        metrics = {
            "drift_scale": torch.stack([f.mean_distance for f in fields]).mean().item(),
            "within_group_std": generated.std(dim=1, unbiased=False).mean().item(),
            "best_of_g_rms": rms_to_expert.min(dim=1).values.mean().item(),
            "single_sample_rms": rms_to_expert[:, 0].mean().item(),
            "group_mean_rms": (generated.mean(1) - expert).square().mean(dim=(1, 2)).sqrt().mean().item(),
        }
        for tau in fields[0].force_rms:
            metrics[f"force_rms_tau{tau:g}"] = torch.stack([f.force_rms[tau] for f in fields]).mean().item()
        return metrics


class DriftPolicy(PreTrainedPolicy):
    """One-step drifting policy: one network evaluation per action chunk.

    Works with LeRobot's train/eval/rollout loops the way ``DiffusionPolicy`` does:
    observation and action queues, ``select_action`` for one step, ``predict_action_chunk``
    for a whole chunk, ``forward`` → ``(loss, metrics)`` for training.
    """

    config_class = DriftConfig
    name = "drift"

    def __init__(self, config: DriftConfig, **kwargs):
        super().__init__(config)
        config.validate_features()
        self.config = config
        self.model = DriftModel(config)
        self._queues: dict[str, deque] = {}
        self._ema: WeightAverage | None = None  # created at the first update() (training only)
        self.reset()

    def update(self) -> None:
        """After each optimizer step (lerobot-train calls it): fold the weights into the average."""
        if not self.config.use_ema:
            return
        if self._ema is None:
            self._ema = WeightAverage(self.model, self.config.ema_power, self.config.ema_max_decay)
        self._ema.update(self.model)

    def _save_pretrained(self, save_directory, state_dict=None) -> None:
        """With ``use_ema`` the saved weights are the average (what the checkpoint is evaluated with)."""
        if self._ema is None:
            return super()._save_pretrained(save_directory, state_dict)
        if state_dict is not None:  # gathered by the trainer (e.g. FSDP): replace the model's entries
            state_dict = {**state_dict, **{f"model.{k}": v for k, v in self._ema.shadow.items()}}
            return super()._save_pretrained(save_directory, state_dict)
        with self._ema.swapped_in(self.model):
            return super()._save_pretrained(save_directory)

    def get_optim_params(self):
        """The weights, with the noise skip's gain in a group of its own when it trains faster."""
        gain = self.model.noise_gain
        if gain is None or self.config.noise_gain_lr_scale == 1:
            return self.model.parameters()
        rest = [p for p in self.model.parameters() if p is not gain]
        lr = self.config.optimizer_lr * self.config.noise_gain_lr_scale
        return [{"params": rest}, {"params": [gain], "lr": lr}]

    def reset(self):
        """Clear observation and action queues (call at every episode start)."""
        n = self.config.n_obs_steps
        self._queues = {OBS_STATE: deque(maxlen=n), ACTION: deque(maxlen=self.config.n_action_steps)}
        if self.config.image_features:
            self._queues[OBS_IMAGES] = deque(maxlen=n)
        if self.config.env_state_feature:
            self._queues[OBS_ENV_STATE] = deque(maxlen=n)

    def _with_time_axis(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Accept [B, ...] (single frame, n_obs_steps = 1) as well as [B, n_obs_steps, ...] inputs."""
        batch = dict(batch)
        for key in (OBS_STATE, OBS_ENV_STATE, *self.config.image_features):
            expected = 3 if key in (OBS_STATE, OBS_ENV_STATE) else 5
            if key in batch and batch[key].ndim == expected - 1:
                batch[key] = batch[key].unsqueeze(1)
        return stack_camera_images(batch, self.config)

    def supports_rtc(self) -> bool:
        """LeRobot's RTC rollout engine may drive this policy: it was trained to continue a prefix."""
        return self.config.prefix_conditioning

    @torch.no_grad()
    def predict_action_chunk(
        self,
        batch: dict[str, Tensor],
        noise: Tensor | None = None,
        inference_delay: int | None = None,
        prev_chunk_left_over: Tensor | None = None,
    ) -> Tensor:
        """[B, n_action_steps, action_dim] normalized actions from one generator call.

        ``batch`` with a time axis ([B, n_obs_steps, ...], e.g. a dataloader batch) is used as
        given. One frame without it ([B, ...]: what LeRobot's RTC engine passes, chunk after
        chunk) joins the observation queues, as in ``select_action``, and the chunk sees the
        last ``n_obs_steps`` frames (the first one repeated until there are enough).

        LeRobot's RTC contract: ``prev_chunk_left_over`` holds the previous chunk's unexecuted
        actions (normalized, [T, A] or [B, T, A], zero-padded) and ``inference_delay`` how many
        of them will have been executed when this chunk arrives; the first
        min(inference_delay, max_prefix_steps, T) returned actions are those, and the rest
        continue them.
        """
        if batch[OBS_STATE].ndim == 2:
            self._queue_frame(batch)
            batch = self._queued_history()
        else:
            batch = stack_camera_images(batch, self.config)
        prefix, prefix_len = self._committed_prefix(batch[OBS_STATE], inference_delay, prev_chunk_left_over)
        return self.model.generate_actions(batch, noise=noise, prefix=prefix, prefix_len=prefix_len)

    def _committed_prefix(
        self, state: Tensor, inference_delay: int | None, left_over: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None]:
        """(prefix [B, max_prefix_steps, A], prefix_len [B]) from an RTC call, or (None, None)."""
        if left_over is None or not inference_delay:
            return None, None
        if not self.config.prefix_conditioning:
            raise ValueError(
                "This drift checkpoint was trained without prefix_conditioning, so it cannot continue a "
                "previous chunk. Run it without RTC, or retrain with --policy.prefix_conditioning=true."
            )
        left = left_over if left_over.ndim == 3 else left_over[None]
        b, p = state.shape[0], self.config.max_prefix_steps
        d = min(int(inference_delay), p, left.shape[1])
        prefix = state.new_zeros(b, p, left.shape[-1])
        prefix[:, :d] = left[:, :d].to(prefix)
        return prefix, torch.full((b,), d, dtype=torch.long, device=state.device)

    def _queue_frame(self, frame: dict[str, Tensor]) -> None:
        frame = stack_camera_images({k: v for k, v in frame.items() if k != ACTION}, self.config)
        self._queues = populate_queues(self._queues, frame)

    def _queued_history(self) -> dict[str, Tensor]:
        return {k: torch.stack(list(q), dim=1) for k, q in self._queues.items() if k != ACTION}

    @torch.no_grad()
    def select_action(self, batch: dict[str, Tensor], noise: Tensor | None = None) -> Tensor:
        """Next action [B, action_dim]; a new chunk is generated only when the queue is empty."""
        self._queue_frame(batch)
        if len(self._queues[ACTION]) == 0:
            history = self._queued_history()
            chunk = self.model.generate_actions(history, noise=noise)
            self._queues[ACTION].extend(chunk.transpose(0, 1))
        return self._queues[ACTION].popleft()

    def forward(self, batch: dict[str, Tensor], reduction: str = "mean") -> tuple[Tensor, dict]:
        """Drifting loss (mean, or per sample with ``reduction="none"``) and training diagnostics."""
        per_obs, metrics = self.model.compute_loss(self._with_time_axis(batch))
        if reduction == "none":
            return per_obs, metrics
        return per_obs.mean(), metrics
