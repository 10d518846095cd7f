"""A running loop's state, all of it created in one place (``start_loop``), so the tick reads
only what exists: observation history, safety filter, policy feed, mode machine, noise, recorder,
the command waiting for its deadline, and the bus-failure count."""

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lerobot_policy_drift.drift.timing import time_calls
from lerobot_policy_drift.runtime.backends import Backend
from lerobot_policy_drift.runtime.chunks import ChunkSchedule, LatencyWindow
from lerobot_policy_drift.runtime.config import RunConfig
from lerobot_policy_drift.runtime.errors import BUS_ERRORS, SessionFault
from lerobot_policy_drift.runtime.feed import PolicyFeed
from lerobot_policy_drift.runtime.modes import Modes
from lerobot_policy_drift.runtime.monitor import LatencyMonitor
from lerobot_policy_drift.runtime.observation import ObservationHistory, Watchdog
from lerobot_policy_drift.runtime.safety import SafetyFilter, SafetyLimits
from lerobot_policy_drift.runtime.wiring import Devices, joint_limits

WARMUP_CALLS = 5


@dataclass(frozen=True)
class Pending:
    """A safe command and the tick it is for: written at that tick's deadline (``bus_order``
    write-first) or straight away (read-first)."""

    command: np.ndarray
    tick: int  # the tick whose deadline writes it
    from_policy: bool
    leader_read_at: float | None = None  # perf_counter of the leader reading it follows (teleop)


@dataclass
class Loop:
    history: ObservationHistory
    safety: SafetyFilter
    feed: PolicyFeed
    modes: Modes
    rng: np.random.Generator
    noise_shape: tuple[int, int, int]  # (candidates, horizon, action_dim)
    recorder: object | None
    watchdog: Watchdog
    pending: Pending  # the next command to write (write-first: computed during the previous tick)
    bus_error_limit: int
    hold_noise: bool = False  # one draw per engagement (RunConfig.noise "per-engagement")
    t0: float | None = None  # clock time of tick 0, once the clock starts
    bus_failures: int = 0  # ticks in a row with a failed bus read or write
    _tick_failed: BaseException | None = None
    _held: tuple[int, np.ndarray] | None = None  # (engagement, its noise) with hold_noise

    def command(
        self, target: int, stale_why: str | None, monitor: LatencyMonitor
    ) -> tuple[np.ndarray, bool, float | None]:
        """The command for tick ``target`` before safety, whether it came from the policy queue, and
        when the leader reading it follows was taken (operator modes; None otherwise)."""
        if self.modes.mode != "auto":
            return self.modes.operator_command(target), False, time.perf_counter()
        action = self.feed.pop(target)
        if stale_why is not None:
            return self.safety.last, False, None  # watchdog: never act on a stale view of the world
        if action is None:  # the plan ran dry mid-engagement, or the engagement's first chunk is due
            ran_dry = self.feed.served == self.modes.epoch
            monitor.events["underrun_hold" if ran_dry else "awaiting_first_chunk"] += 1
            return self.safety.last, False, None
        return action, True, None

    def bus_failed(self, err: BaseException, direction: str, events) -> None:
        """A failed bus read or write this tick (counted in ``events``)."""
        events[f"bus_{direction}_error"] += 1
        self._tick_failed = self._tick_failed or err

    def end_tick(self) -> None:
        """Too many ticks in a row with a failed bus read or write end the session."""
        err, self._tick_failed = self._tick_failed, None
        self.bus_failures = 0 if err is None else self.bus_failures + 1
        if self.bus_failures >= self.bus_error_limit:
            raise SessionFault(
                "bus", f"{self.bus_failures} ticks in a row failed to reach the arm: {err}"
            ) from err

    def policy_inputs(self, committed: np.ndarray | None = None) -> dict:
        """The graph's inputs for a chunk from the latest observations, with its noise (and the
        committed actions, for a prefix-conditioned bundle)."""
        return self.history.feeds(self.chunk_noise(), committed)

    def chunk_noise(self) -> np.ndarray:
        """A fresh draw, or with ``hold_noise`` the current engagement's (drawn at its first chunk)."""
        if not self.hold_noise:
            return _noise(self.rng, self.noise_shape)
        if self._held is None or self._held[0] != self.modes.epoch:
            self._held = (self.modes.epoch, _noise(self.rng, self.noise_shape))
        return self._held[1]


def _noise(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def start_loop(
    cfg: RunConfig,
    backend: Backend,
    devices: Devices,
    monitor: LatencyMonitor,
    multiple: int,
    checkpoint: Callable[[], None],
    changed: Callable[[str, str, str, int], None],
) -> Loop:
    """First observation, safety limits from the calibration, warm-up (``checkpoint`` between
    calls, so a Ctrl-C cancels it), then the loop's parts. Nothing here sends a command."""
    c, robot = backend.contract, devices.robot
    history = ObservationHistory(c, multiple)
    try:
        obs = robot.get_observation()
    except (*BUS_ERRORS, TimeoutError) as err:
        raise SessionFault("observation", f"first observation failed: {err}") from err
    history.push(obs)
    n = len(c.action_names)
    lower, upper = joint_limits(robot, c.action_names)
    max_jerk = None if cfg.max_accel is None else np.full(n, cfg.max_accel / cfg.fps**2)
    limits = SafetyLimits(c.action_names, lower, upper, np.full(n, cfg.max_speed / cfg.fps), max_jerk)
    safety = SafetyFilter(limits)
    safety.reset(np.array([obs[name] for name in c.action_names]))
    rng = np.random.default_rng(cfg.seed)
    shape = (c.candidates, c.horizon, n)
    warm = []
    for _ in range(WARMUP_CALLS):
        checkpoint()
        feeds = history.feeds(_noise(rng, shape))
        warm += time_calls(lambda f=feeds: backend.infer(f), 1)
    checkpoint()
    recorder = None
    if cfg.record_dir is not None:
        from lerobot_policy_drift.runtime.recording import EpisodeRecorder

        recorder = EpisodeRecorder(cfg.record_dir, cfg.record_repo_id, cfg.fps, robot)
    first = "teleop" if cfg.mode == "teleop-first" else "auto"
    handover_ticks = max(int(cfg.handover_s * cfg.fps), 1)
    modes = Modes(first, devices.teleop, c.action_names, handover_ticks, monitor.events, changed)
    latency = LatencyWindow(cfg.latency_window, initial_s=max(warm))
    schedule = ChunkSchedule(cfg.blend_steps, c.ensemble_coeff)
    feed = PolicyFeed(backend, schedule, latency, multiple, cfg.refill_margin, monitor)
    watchdog = Watchdog(cfg.watchdog_ms, cfg.fault_after_ms)
    hold = Pending(safety.last, 0, False)  # tick 0 writes the pose found at connect
    return Loop(
        history,
        safety,
        feed,
        modes,
        rng,
        shape,
        recorder,
        watchdog,
        hold,
        cfg.bus_error_limit,
        hold_noise=cfg.noise == "per-engagement",
    )
