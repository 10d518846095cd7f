"""From LeRobot observations to the graph's inputs: the last ``n_obs_steps`` states and frames.

LeRobot robots return ``{"<motor>.pos": float, …, "<camera>": uint8 HWC RGB}``. The graph wants
``observation.state`` ``[1, S, D]`` (the bundle's state names, in order) and one
``observation.images.<camera>`` ``[1, S, 3, H, W]`` per camera. When the loop runs ``multiple``
times faster than the policy's training rate, the history keeps every ``multiple``-th tick so
the S steps are one policy period apart, as in training. Until S steps exist, the first
observation is repeated (LeRobot's policies fill their queues the same way).

A prefix-conditioned bundle also takes the committed actions (``action.prefix`` [1, P, A] in robot
units, zero-padded, and ``action.prefix_length`` [1]); without any (the first chunk, a handover)
the length is 0 and the policy chooses freely. A bundle of K candidates gets every input repeated
K times, with K noise draws.
"""

import time
from collections import deque

import numpy as np

from lerobot_policy_drift.runtime.backends import PolicyContract
from lerobot_policy_drift.runtime.errors import SessionFault


class ObservationHistory:
    def __init__(self, contract: PolicyContract, multiple: int = 1):
        self.contract = contract
        self.multiple = multiple
        self._frames: deque[dict[str, np.ndarray]] = deque(maxlen=(contract.n_obs_steps - 1) * multiple + 1)

    def push(self, observation: dict) -> None:
        """Add one tick's LeRobot observation (checked against the contract)."""
        c = self.contract
        state = np.array([observation[name] for name in c.state_names], np.float32)
        entry = {"state": state}
        for cam, (h, w) in c.cameras.items():
            frame = observation[cam]
            if frame.shape != (h, w, 3):
                raise ValueError(
                    f"camera {cam!r} gives {frame.shape[1]}x{frame.shape[0]} frames; the policy needs {w}x{h}."
                )
            entry[cam] = np.ascontiguousarray(frame.transpose(2, 0, 1))
        self._frames.append(entry)

    def __len__(self) -> int:
        return len(self._frames)

    def feeds(self, noise: np.ndarray, committed: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Graph inputs from the history, ``[K, horizon, action_dim]`` noise (K = the bundle's
        candidates, 1 for most) and, for a prefix-conditioned bundle, the committed actions
        ``[d, action_dim]`` (d ≤ P, or None)."""
        if not self._frames:
            raise RuntimeError("no observation yet")
        frames = list(self._frames)[::-1][:: self.multiple][::-1]  # policy-period spacing, oldest first
        frames = [frames[0]] * (self.contract.n_obs_steps - len(frames)) + frames
        feeds = {"observation.state": np.stack([f["state"] for f in frames])[None]}
        for cam in self.contract.cameras:
            feeds[f"observation.images.{cam}"] = np.stack([f[cam] for f in frames])[None]
        if self.contract.max_prefix_steps:
            prefix = np.zeros((1, self.contract.max_prefix_steps, noise.shape[-1]), np.float32)
            d = 0 if committed is None else min(len(committed), self.contract.max_prefix_steps)
            prefix[0, :d] = committed[:d] if d else 0.0
            feeds["action.prefix"] = prefix
            feeds["action.prefix_length"] = np.array([d], np.int64)
        k = len(noise)
        feeds = {name: np.repeat(value, k, axis=0) if k > 1 else value for name, value in feeds.items()}
        feeds["noise"] = noise.astype(np.float32)
        return feeds


class Watchdog:
    """A stale view of the world holds the arm: a failed read, or a camera frame older than
    ``watchdog_ms``; a hold longer than ``fault_after_ms`` ends the session (``SessionFault``)."""

    def __init__(self, watchdog_ms: float, fault_after_ms: float):
        self.watchdog_ms, self.fault_after_ms = watchdog_ms, fault_after_ms
        self.hold_since: float | None = None

    def frame_age(self, cameras) -> tuple[float, float, str | None]:
        """(perf_counter of the oldest latest frame, its age in ms, why it is too old or None)."""
        source = min(cam.latest_timestamp for cam in cameras)
        age_ms = (time.perf_counter() - source) * 1e3
        return source, age_ms, (f"camera frame {age_ms:.0f} ms old" if age_ms > self.watchdog_ms else None)

    def check(self, stale_why: str | None) -> None:
        if stale_why is None:
            self.hold_since = None
            return
        self.hold_since = self.hold_since or time.perf_counter()
        if (time.perf_counter() - self.hold_since) * 1e3 > self.fault_after_ms:
            raise SessionFault(
                "watchdog", f"no fresh observation for {self.fault_after_ms:g} ms ({stale_why})"
            )
