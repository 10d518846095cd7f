"""Conditional multimodal tasks with known modes, and the figures that score a policy on them.

Both tasks live directly in normalized units ([-1, 1]) so they need no statistics, and both
can be written as a ``LeRobotDataset`` so ``lerobot-train`` trains on exactly the same data.

* ``bimodal``: observation o ~ U(-1, 1) (state = (o, 0)); the expert chunk holds the action
  (o, +0.5) or (o, −0.5), chosen at random per episode. Per observation there are exactly two
  valid answers; their mean (o, 0) is invalid.
* ``obstacle``: a point goes from (−0.8, 0) to (0.8, 0) around an obstacle at the origin,
  over the top or the bottom arc (chosen at random per episode). The state is the current
  position; at the start both arcs are valid and going straight through is invalid.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lerobot_policy_drift.drift.video_backend import video_backend

TASKS = ("bimodal", "obstacle")
ARC_HEIGHT = 0.6
EPISODE_LEN = {"bimodal": 24, "obstacle": 40}
MODE_TOLERANCE = 0.1  # RMS over the executed chunk, in normalized units (5 % of the range)


@dataclass
class ModeScore:
    """Figures for a batch of sampled chunks against the task's known modes."""

    precision: float  # chunks within tolerance of a valid mode
    balance: float  # min over modes / max over modes of the valid chunks' split (1 = even)
    between: float  # chunks sitting between the modes (the collapse signature)
    mode_split: tuple[float, float]  # fraction of all chunks in mode +, mode −

    def row(self) -> dict[str, float]:
        return {
            "precision": self.precision,
            "balance": self.balance,
            "between": self.between,
            "mode_plus": self.mode_split[0],
            "mode_minus": self.mode_split[1],
        }


def obstacle_path(progress: np.ndarray, sign: float) -> np.ndarray:
    """Positions [..., 2] along the top (sign=+1) or bottom (sign=−1) arc at progress ∈ [0, 1]."""
    return np.stack([-0.8 * np.cos(np.pi * progress), sign * ARC_HEIGHT * np.sin(np.pi * progress)], -1)


def episode(task: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One demonstration: states [T, 2] and actions [T, 2] (the action is the next target)."""
    n = EPISODE_LEN[task]
    sign = rng.choice([-1.0, 1.0])
    if task == "bimodal":
        o = rng.uniform(-1, 1)
        states = np.tile([o, 0.0], (n, 1))
        actions = np.tile([o, 0.5 * sign], (n, 1))
    elif task == "obstacle":
        progress = np.linspace(0, 1, n + 1)
        path = obstacle_path(progress, sign)
        states, actions = path[:-1], path[1:]
    else:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    return states.astype(np.float32), actions.astype(np.float32)


def eval_states(task: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """States [n, 2] where both modes are valid (the decision points)."""
    if task == "bimodal":
        o = rng.uniform(-0.9, 0.9, size=n)
        return np.stack([o, np.zeros(n)], -1).astype(np.float32)
    return np.tile(obstacle_path(np.zeros(1), 1.0), (n, 1)).astype(np.float32)


def _rms(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(np.square(x), axis=(1, 2)))


def score(task: str, states: np.ndarray, chunks: np.ndarray, tol: float = MODE_TOLERANCE) -> ModeScore:
    """Classify sampled chunks [n, T, 2] (executed steps, from the decision point) into modes.

    A chunk is in a mode when its RMS distance to that mode's chunk is below ``tol``.
    """
    if task == "bimodal":
        plus_chunk = np.stack(
            [np.repeat(states[:, None, 0], chunks.shape[1], 1), np.full(chunks.shape[:2], 0.5)], -1
        )
        minus_chunk = plus_chunk * np.array([1.0, -1.0])
        plus, minus = _rms(chunks - plus_chunk) < tol, _rms(chunks - minus_chunk) < tol
        between = np.abs(chunks[..., 1]).mean(-1) < 0.15
    else:
        progress = np.arange(1, chunks.shape[1] + 1) / EPISODE_LEN["obstacle"]
        plus = _rms(chunks - obstacle_path(progress, 1.0)[None]) < tol
        minus = _rms(chunks - obstacle_path(progress, -1.0)[None]) < tol
        # Heading into the obstacle: the last executed step has not left the axis.
        between = np.abs(chunks[:, -1, 1]) < 0.5 * ARC_HEIGHT * math.sin(math.pi * progress[-1])
    n = len(chunks)
    n_plus, n_minus = int(plus.sum()), int(minus.sum())
    balance = min(n_plus, n_minus) / max(n_plus, n_minus, 1)
    return ModeScore(
        precision=(n_plus + n_minus) / n,
        balance=balance,
        between=float(between.mean()),
        mode_split=(n_plus / n, n_minus / n),
    )


def training_windows(task: str, n_episodes: int, horizon: int, n_obs_steps: int, seed: int = 0):
    """All (observation history, expert chunk) windows of ``n_episodes`` demos, LeRobot-style.

    Indices past either end of an episode repeat its edge frame, as ``LeRobotDataset`` does.
    Returns state [N, n_obs_steps, 2] and action [N, horizon, 2] tensors.
    """
    rng = np.random.default_rng(seed)
    states, actions = [], []
    for _ in range(n_episodes):
        s, a = episode(task, rng)
        n = len(s)
        for t in range(n):
            obs_idx = np.clip(np.arange(t - n_obs_steps + 1, t + 1), 0, n - 1)
            act_idx = np.clip(np.arange(t - n_obs_steps + 1, t - n_obs_steps + 1 + horizon), 0, n - 1)
            states.append(s[obs_idx])
            actions.append(a[act_idx])
    return torch.from_numpy(np.stack(states)), torch.from_numpy(np.stack(actions))


def write_lerobot_dataset(
    task: str, root: Path, n_episodes: int, fps: int = 10, image_size: int | None = None, seed: int = 0
):
    """Record ``n_episodes`` demos of ``task`` as a local ``LeRobotDataset`` (images optional).

    With ``image_size`` each frame also carries a camera image ``observation.images.top`` that
    shows the state as a bright square on a dark background, so vision is exercised too.
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    names = {"names": ["x", "y"]}
    features = {
        "observation.state": {"dtype": "float32", "shape": (2,), **names},
        "action": {"dtype": "float32", "shape": (2,), **names},
    }
    if image_size:
        features["observation.images.top"] = {
            "dtype": "image",
            "shape": (image_size, image_size, 3),
            "names": ["height", "width", "channels"],
        }
    dataset = LeRobotDataset.create(
        repo_id=f"local/drift_{task}",
        fps=fps,
        features=features,
        root=root,
        use_videos=False,
        video_backend=video_backend(),
    )
    rng = np.random.default_rng(seed)
    for _ in range(n_episodes):
        states, actions = episode(task, rng)
        for s, a in zip(states, actions, strict=True):
            frame = {"observation.state": s, "action": a, "task": task}
            if image_size:
                frame["observation.images.top"] = _render_state(s, image_size)
            dataset.add_frame(frame)
        dataset.save_episode()
    dataset.finalize()
    return dataset


def _render_state(state: np.ndarray, size: int) -> np.ndarray:
    """A dark frame with a bright square where the 2-D state points (uint8 HWC)."""
    img = np.full((size, size, 3), 30, dtype=np.uint8)
    cx, cy = ((np.clip(state, -1, 1) + 1) / 2 * (size - 1)).astype(int)
    r = max(1, size // 10)
    img[max(0, cy - r) : cy + r + 1, max(0, cx - r) : cx + r + 1] = (230, 200, 40)
    return img
