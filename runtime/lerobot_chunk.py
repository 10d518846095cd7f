"""A LeRobot policy type served by drift-run's torch backend on the graph contract, the way
LeRobot's own online path (``select_action``) runs it, so every baseline shares the runtime.

- ``diffusion`` (Diffusion Policy) and ``vqbet`` (VQ-BeT) keep the last ``n_obs_steps``
  observations in queues that ``select_action`` fills frame by frame; the history the runtime
  holds is put into those queues the same way (``lerobot.policies.utils.populate_queues``, with
  the cameras stacked as ``select_action`` stacks them), then ``predict_action_chunk`` reads them.
- ``act`` (ACT) sees one observation. Without temporal ensembling the chunk is the
  ``n_action_steps`` actions its ``select_action`` queue would play; with it
  (``temporal_ensemble_coeff`` set, ``n_action_steps`` 1) it is the whole ``chunk_size``
  prediction, called every policy step, and drift-run averages the overlapping predictions with
  ACT's own weights (``runtime/chunks.py``, ``ChunkSchedule(ensemble_coeff=...)``).

Noise is passed to policies that take it (Diffusion Policy); the others ignore it.
"""

import torch
from lerobot.policies.utils import populate_queues
from lerobot.utils.constants import OBS_IMAGES, OBS_STATE

SERVED_TYPES = ("drift", "diffusion", "act", "vqbet")  # --backend torch; drift runs as DriftGraph


def chunk_steps(config) -> int:
    """Actions one call returns: what ``select_action`` plays from one chunk, or, for ACT with
    temporal ensembling, the whole prediction the ensemble averages."""
    if config.type == "act" and config.temporal_ensemble_coeff is not None:
        return config.chunk_size
    if config.type == "vqbet":
        return config.action_chunk_size
    return config.n_action_steps


def noise_steps(config) -> int:
    """Length of the noise chunk the runtime draws (the policy's horizon where it has one)."""
    return getattr(config, "horizon", None) or chunk_steps(config)


def ensemble_coeff(config) -> float | None:
    """ACT's temporal-ensembling coefficient (None: chunks are played, not averaged)."""
    return getattr(config, "temporal_ensemble_coeff", None) if config.type == "act" else None


class LeRobotChunk:
    """The graph contract computed by a LeRobot policy's own pre/post-processors."""

    def __init__(self, ckpt, names: list[str], noise_name: str):
        self._ckpt, self._names, self._noise_name = ckpt, names, noise_name
        self._steps = chunk_steps(ckpt.policy.config)

    def __call__(self, *inputs):
        batch = dict(zip(self._names, inputs, strict=True))
        noise = batch.pop(self._noise_name)
        batch = {k: v.float() / 255 if k.startswith("observation.images.") else v for k, v in batch.items()}
        keys = list(batch)
        batch = self._ckpt.preprocessor(batch)  # [B, n_obs_steps, ...]: normalized, on the device
        policy = self._ckpt.policy
        policy.reset()
        frames = [{k: batch[k][:, t] for k in keys} for t in range(batch[OBS_STATE].shape[1])]
        if hasattr(policy, "_queues"):  # observation-history policies: fill them as select_action does
            cams = list(policy.config.image_features)
            for frame in frames:
                if cams:
                    frame[OBS_IMAGES] = torch.stack([frame[k] for k in cams], dim=-4)
                populate_queues(policy._queues, frame)
        kwargs = {"noise": noise} if policy.config.type == "diffusion" else {}
        chunk = policy.predict_action_chunk(frames[-1], **kwargs)[:, : self._steps]
        return self._ckpt.postprocessor(chunk)
