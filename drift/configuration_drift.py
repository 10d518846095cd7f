"""DriftConfig: Diffusion Policy's observation/backbone knobs plus the drifting objective's."""

from dataclasses import dataclass, field

from lerobot.configs import NormalizationMode, PreTrainedConfig
from lerobot.optim import DiffuserSchedulerConfig

from .optim import DriftAdamWConfig

CHUNK_REPRESENTATIONS = ("flat", "per_timestep", "both")


def _require(ok: bool, name: str, allowed: str, value) -> None:
    """Raise the one error shape every invalid field gets: which field, what is allowed, what was given."""
    if not ok:
        raise ValueError(f"DriftConfig.{name} must be {allowed}; got {value!r}.")


@PreTrainedConfig.register_subclass("drift")
@dataclass
class DriftConfig(PreTrainedConfig):
    """Configuration of DriftPolicy: a one-step generator trained with the drifting objective.

    The network is Diffusion Policy's (ResNet + SpatialSoftmax encoder per camera, a 1D
    conditional U-Net with FiLM on the observation features) used as a one-step map from a
    noise chunk to an action chunk. Everything that only iterative diffusion needs (noise
    schedules, prediction type, sample clipping, inference steps) is gone.

    Observation / action layout (as in Diffusion Policy):
        n_obs_steps: observation frames fed to the policy (current and previous).
        horizon: length of the generated chunk, counted from the oldest observation.
        n_action_steps: actions executed per chunk, starting at the current step.
        drop_n_last_frames: frames dropped at episode ends when sampling training windows.
        state_range_floor: narrowest state range (robot units) the normalizer divides by. A
            joint the demonstrations never moved has min = max; LeRobot then divides by 1e-8,
            so one servo tick of drift on the real arm reads as ~10⁷ normalized and the
            policy's output is arbitrary. Narrower ranges are widened to this, centred. 1.0
            suits LeRobot's SO/Koch arms (degrees, gripper 0–100); use ~0.02 for radians.

    Vision (offline defaults: no pretrained weights, GroupNorm instead of BatchNorm):
        vision_backbone, pretrained_backbone_weights, use_group_norm, crop_shape,
        crop_is_random (random crop while training, centre crop in eval),
        spatial_softmax_num_keypoints, use_separate_rgb_encoder_per_camera.
        vision_backbone_stages: ResNet stages kept (1–4; 4 = Diffusion Policy's encoder).
            Each stage halves the feature map: on a 96×96 crop stage 4 leaves 3×3 cells for
            the spatial softmax, on a 64×48 camera 2×2 — too coarse to place a small object.
            Fewer stages keep a finer grid (stride 8 at 2) and cost fewer FLOPs.

    Generator U-Net: down_dims, kernel_size, n_groups, use_film_scale_modulation,
        gradient_checkpointing.
        noise_skip: the generator outputs noise + U-Net(noise). DP's U-Net alone starts
            almost noise-insensitive (within-group spread ≈ 0.1 of the action range), and
            the drift field's repulsion, proportional to that spread, then cannot stop the
            samples collapsing onto the conditional mean; with the skip every sample starts
            spread over the whole normalized range and the modes form.
        noise_gain_lr_scale: the skip's gain (one learnable scalar, 1 at init) trains at this
            multiple of ``optimizer_lr``. AdamW moves a parameter by at most about the learning
            rate a step, so at 1 the gain can fall by only ~0.3 over a 2000-step cosine schedule,
            and it falls that fast the whole run: the U-Net must cancel the rest of the noise
            itself, which leaves spread (imprecision) within each mode. At 10 the gain reaches
            ~0.01 and the demo's policy succeeds 90.0 ± 3.3 % (three seeds) against 50 % (BENCHMARKS
            §7.7); 1 reproduces the checkpoints trained before it.

    Drifting objective:
        num_samples_per_obs (G): generated chunks per observation; they repel each other
            and are attracted to the expert chunk. G = 1 degenerates to regression.
        temperatures: kernel bandwidths relative to the mean pairwise distance.
        chunk_representation: "flat" (one loss over the whole T×D chunk), "per_timestep"
            (a loss per step) or "both" (their sum).
        mask_padding: exclude copy-padded actions past an episode's end from the field.
        noise_scale: multiplies the N(0, I) noise at inference only (evaluation knob; keep
            1.0 on multimodal tasks: 0 collapses onto the between-mode mean, and 0.5 already
            sends most reaches between the targets, BENCHMARKS §7.2).

    Committed prefix (training-time real-time chunking, off by default):
        prefix_conditioning: the generator also receives the first d actions of the chunk
            (the actions the arm will already have executed when the chunk arrives) and
            generates the rest consistent with them, so a new chunk continues the plan in
            progress instead of choosing a mode afresh. In training d is drawn per example
            from 0..max_prefix_steps (0 keeps the unconditional, multimodal behaviour); the
            given steps replace the noise at their chunk positions, a thermometer code of d
            joins the U-Net's FiLM conditioning, the output there is the prefix itself, and
            the drifting loss covers only the free steps. Such a checkpoint serves LeRobot's
            RTC rollout engine (``supports_rtc()``) and exports a graph with a prefix input.
        max_prefix_steps: the longest prefix, in chunk steps: the inference delay the policy
            can absorb (inference plus observation age, divided by the control period). The
            default 4 covers 133 ms at 30 Hz; at least one executed step must stay free, so
            it is below n_action_steps.

    Expert-proximal terms (off by default; our reading of Implicit Drifting Policy, arXiv
    2606.01098, Alg. 1, which has no public code):
        expert_proximal_weight: weight of a second loss term added to the drifting loss. The
            generator is also called on the expert chunk plus σ·ε (a point near the expert)
            at timestep expert_proximal_t, and its output is pulled onto the expert chunk,
            each coordinate weighted by ``objective.neighbour_metric`` (coordinates on which
            the batch's most similar observations agree weigh more). IDP weights its probe
            81×. Inference is unchanged (noise in, timestep 0); the term costs one more U-Net
            pass per observation in training. 0 disables it.
        expert_proximal_sigma: σ, the probe's distance from the expert in normalized action
            units (IDP: 0.1).
        expert_proximal_t: the probe's timestep in (0, 1], given to the U-Net's step
            embedding as round(100 t) (IDP: 0.9); inference uses 0.

    Weight averaging (off by default):
        use_ema: keep an exponential moving average of the weights during training
            (``update()``, which lerobot-train calls after every optimizer step) and save it
            as the checkpoint's weights: what inference, export and drift-run use. Resuming
            from such a checkpoint continues from the averaged weights.
        ema_power, ema_max_decay: the decay's warm-up, min(max, 1 - (1 + t)^-power) after t
            steps (Diffusion Policy's 0.75 and 0.9999; see drift/ema.py).

    Optimizer (AdamW, Diffusion Policy's recipe with tighter clipping):
        optimizer_fused: build AdamW with torch's fused kernel where the device has one (CPU,
            CUDA): the same update in one call instead of a loop over the parameter tensors,
            5–7 % of a training step on CPU (drift/optim.py). False: torch's own choice.
    """

    n_obs_steps: int = 2
    horizon: int = 16
    n_action_steps: int = 8

    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.MEAN_STD,
            "STATE": NormalizationMode.MIN_MAX,
            "ACTION": NormalizationMode.MIN_MAX,
        }
    )
    drop_n_last_frames: int = 7  # horizon - n_action_steps - n_obs_steps + 1
    state_range_floor: float = 1.0

    # Vision encoder.
    vision_backbone: str = "resnet18"
    crop_shape: tuple[int, int] | None = None
    crop_is_random: bool = True
    pretrained_backbone_weights: str | None = None
    use_group_norm: bool = True
    spatial_softmax_num_keypoints: int = 32
    use_separate_rgb_encoder_per_camera: bool = True
    vision_backbone_stages: int = 4

    # One-step generator (Diffusion Policy's conditional U-Net).
    down_dims: tuple[int, ...] = (256, 512, 1024)
    kernel_size: int = 5
    n_groups: int = 8
    use_film_scale_modulation: bool = True
    gradient_checkpointing: bool = False
    noise_skip: bool = True
    noise_gain_lr_scale: float = 10.0

    # Drifting objective.
    num_samples_per_obs: int = 4
    temperatures: tuple[float, ...] = (0.02, 0.05, 0.2)
    chunk_representation: str = "flat"
    mask_padding: bool = False
    noise_scale: float = 1.0
    prefix_conditioning: bool = False
    max_prefix_steps: int = 4
    expert_proximal_weight: float = 0.0
    expert_proximal_sigma: float = 0.1
    expert_proximal_t: float = 0.9
    use_ema: bool = False
    ema_power: float = 0.75
    ema_max_decay: float = 0.9999

    # Optimizer / scheduler presets (Diffusion Policy's recipe, with tighter clipping).
    optimizer_lr: float = 1e-4
    optimizer_betas: tuple[float, float] = (0.95, 0.999)
    optimizer_eps: float = 1e-8
    optimizer_weight_decay: float = 1e-6
    optimizer_grad_clip_norm: float = 1.0
    optimizer_fused: bool = True
    scheduler_name: str = "cosine"
    scheduler_warmup_steps: int = 500

    # Training runs offline by default; set true (with repo_id) to publish checkpoints.
    push_to_hub: bool = False

    def __post_init__(self):
        super().__post_init__()
        self._validate()

    def _validate(self) -> None:
        _require(self.n_obs_steps >= 1, "n_obs_steps", "an integer ≥ 1", self.n_obs_steps)
        factor = 2 ** (len(self.down_dims) - 1)
        _require(
            self.horizon >= 1 and self.horizon % factor == 0,
            "horizon",
            f"a positive multiple of {factor} (2^(len(down_dims)-1), the U-Net's downsampling)",
            self.horizon,
        )
        max_steps = self.horizon - self.n_obs_steps + 1
        _require(
            1 <= self.n_action_steps <= max_steps,
            "n_action_steps",
            f"in [1, horizon - n_obs_steps + 1 = {max_steps}]",
            self.n_action_steps,
        )
        _require(self.drop_n_last_frames >= 0, "drop_n_last_frames", "≥ 0", self.drop_n_last_frames)
        _require(
            self.vision_backbone.startswith("resnet"),
            "vision_backbone",
            "a torchvision ResNet name such as 'resnet18'",
            self.vision_backbone,
        )
        _require(
            self.vision_backbone_stages in (1, 2, 3, 4),
            "vision_backbone_stages",
            "1, 2, 3 or 4 (ResNet stages kept)",
            self.vision_backbone_stages,
        )
        _require(
            self.crop_shape is None or (len(self.crop_shape) == 2 and min(self.crop_shape) > 0),
            "crop_shape",
            "None or a pair of positive integers (H, W)",
            self.crop_shape,
        )
        _require(
            not (self.use_group_norm and self.pretrained_backbone_weights),
            "use_group_norm",
            "false when pretrained_backbone_weights is set (GroupNorm would discard the BatchNorm weights)",
            self.use_group_norm,
        )
        _require(
            self.spatial_softmax_num_keypoints >= 1,
            "spatial_softmax_num_keypoints",
            "an integer ≥ 1",
            self.spatial_softmax_num_keypoints,
        )
        _require(
            len(self.down_dims) >= 1 and all(d >= 1 for d in self.down_dims),
            "down_dims",
            "a non-empty tuple of positive channel counts",
            self.down_dims,
        )
        _require(
            self.n_groups >= 1 and all(d % self.n_groups == 0 for d in self.down_dims),
            "n_groups",
            f"a positive divisor of every entry of down_dims {self.down_dims}",
            self.n_groups,
        )
        _require(
            self.kernel_size >= 1 and self.kernel_size % 2 == 1,
            "kernel_size",
            "an odd integer ≥ 1",
            self.kernel_size,
        )
        _require(
            self.num_samples_per_obs >= 1,
            "num_samples_per_obs",
            "an integer ≥ 1 (≥ 2 for multimodal behaviour; 2–8 recommended)",
            self.num_samples_per_obs,
        )
        _require(
            len(self.temperatures) >= 1 and all(t > 0 for t in self.temperatures),
            "temperatures",
            "a non-empty tuple of positive bandwidths, e.g. (0.02, 0.05, 0.2)",
            self.temperatures,
        )
        _require(
            self.chunk_representation in CHUNK_REPRESENTATIONS,
            "chunk_representation",
            f"one of {CHUNK_REPRESENTATIONS}",
            self.chunk_representation,
        )
        _require(
            self.state_range_floor >= 0, "state_range_floor", "≥ 0 (robot units)", self.state_range_floor
        )
        _require(self.noise_scale >= 0, "noise_scale", "≥ 0 (1.0 recommended)", self.noise_scale)
        _require(
            not self.prefix_conditioning or 1 <= self.max_prefix_steps < self.n_action_steps,
            "max_prefix_steps",
            f"in [1, n_action_steps - 1 = {self.n_action_steps - 1}] with prefix_conditioning"
            " (at least one executed step must be generated)",
            self.max_prefix_steps,
        )
        _require(
            self.expert_proximal_weight >= 0,
            "expert_proximal_weight",
            "≥ 0 (0 disables the term; IDP uses 81)",
            self.expert_proximal_weight,
        )
        _require(
            self.expert_proximal_sigma >= 0,
            "expert_proximal_sigma",
            "≥ 0 (normalized action units; IDP uses 0.1)",
            self.expert_proximal_sigma,
        )
        _require(
            0 < self.expert_proximal_t <= 1,
            "expert_proximal_t",
            "in (0, 1] (IDP uses 0.9)",
            self.expert_proximal_t,
        )
        _require(self.ema_power > 0, "ema_power", "> 0 (0.75 recommended)", self.ema_power)
        _require(0 <= self.ema_max_decay < 1, "ema_max_decay", "in [0, 1)", self.ema_max_decay)
        _require(self.optimizer_lr > 0, "optimizer_lr", "> 0", self.optimizer_lr)
        _require(
            self.noise_gain_lr_scale > 0,
            "noise_gain_lr_scale",
            "> 0 (1 = the others' rate)",
            self.noise_gain_lr_scale,
        )
        _require(
            self.optimizer_grad_clip_norm >= 0,
            "optimizer_grad_clip_norm",
            "≥ 0 (0 disables clipping)",
            self.optimizer_grad_clip_norm,
        )
        _require(
            self.scheduler_warmup_steps >= 0, "scheduler_warmup_steps", "≥ 0", self.scheduler_warmup_steps
        )

    @property
    def resize_shape(self) -> None:
        """Images are used at their recorded size (LeRobot's RGB encoder reads this)."""
        return None

    @property
    def diffusion_step_embed_dim(self) -> int:
        """Width of the U-Net's timestep embedding; the generator always sees t = 0."""
        return 32

    def get_optimizer_preset(self) -> DriftAdamWConfig:
        return DriftAdamWConfig(
            lr=self.optimizer_lr,
            betas=self.optimizer_betas,
            eps=self.optimizer_eps,
            weight_decay=self.optimizer_weight_decay,
            grad_clip_norm=self.optimizer_grad_clip_norm,
            fused=self.optimizer_fused,
        )

    def get_scheduler_preset(self) -> DiffuserSchedulerConfig:
        return DiffuserSchedulerConfig(name=self.scheduler_name, num_warmup_steps=self.scheduler_warmup_steps)

    def validate_features(self) -> None:
        """Images (any number, one shape) and environment state are optional; state and action are not."""
        if self.robot_state_feature is None:
            raise ValueError("DriftPolicy needs 'observation.state' among its input features.")
        if self.action_feature is None:
            raise ValueError("DriftPolicy needs 'action' among its output features.")
        shapes = {key: ft.shape for key, ft in self.image_features.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"DriftPolicy expects every camera to share one shape; got {shapes}.")
        if self.crop_shape is not None:
            for key, shape in shapes.items():
                if self.crop_shape[0] > shape[1] or self.crop_shape[1] > shape[2]:
                    raise ValueError(
                        f"DriftConfig.crop_shape {self.crop_shape} must fit inside image '{key}' {shape}."
                    )

    @property
    def observation_delta_indices(self) -> list:
        return list(range(1 - self.n_obs_steps, 1))

    @property
    def action_delta_indices(self) -> list:
        return list(range(1 - self.n_obs_steps, 1 - self.n_obs_steps + self.horizon))

    @property
    def reward_delta_indices(self) -> None:
        return None
