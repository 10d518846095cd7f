"""Action chunks on the loop's tick grid (pure): what to play at each tick, and when to ask for more.

Every action is keyed by the tick it is meant for. A chunk computed from the observation taken at
tick ``k_obs`` holds the actions for ticks ``k_obs, k_obs + 1, …`` (the bundle returns exactly the
actions ``select_action`` would play from that observation). When it arrives at tick ``k_now``,
the ``k_now - k_obs`` actions whose ticks already passed are dropped: the delay skipped is the
number of ticks actually consumed while it was computed, never an all-time estimate.

Joins are cross-faded: on the first ``blend_steps`` ticks of the new chunk the command is
``(1 - w) * old + w * new`` with ``w = j / (blend_steps + 1)`` for the j-th tick (j = 1 …
blend_steps), where ``old`` is the action the previous plan had for that tick or, where that plan
has run out, its last value (with nothing queued: the last command sent); afterwards the new chunk
alone. The same blend starts the policy from the
live pose at a handover. A chunk computed with the committed prefix (a prefix-conditioned bundle)
already continues the plan and is inserted without a blend; every insertion records its join
step, |first new command − the old plan's action for that tick| (L∞ over joints).

With ``ensemble_coeff`` set (ACT's temporal ensembling; a chunk is requested every policy step)
a chunk is not cross-faded in but averaged with every earlier prediction for the same tick, as
LeRobot's ``ACTTemporalEnsembler`` does at the policy rate: the i-th prediction to arrive for a
tick (i = 0 the oldest) weighs ``exp(-ensemble_coeff * i)``. Ticks no earlier chunk covered take
the new chunk's action; with no plan at all (the first chunk, a handover) the cross-fade from the
last command still applies.

``committed`` gives that prefix: the actions the plan holds (or handed out, for the tick being
written) from the request's tick on.

The refill threshold comes from measured inference latency: a new chunk is requested when the
queued actions would run out before a chunk computed now is expected to arrive (windowed p95 of
recent inference times, in ticks, plus a margin). One slow outlier leaves the window after
``window`` chunks instead of inflating the estimate forever.
"""

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

PLAYED_KEPT = 2  # ticks of popped actions kept: the tick being written when a chunk is requested


@dataclass(frozen=True)
class Insertion:
    stale_dropped: int  # actions whose tick passed while the chunk was computed
    blended: int  # ticks cross-faded with the previous plan
    queued: int  # actions now queued from the current tick on
    join_step: float | None  # max |new − old plan| at the first new tick (None: no old plan there)


class ChunkSchedule:
    def __init__(self, blend_steps: int = 3, ensemble_coeff: float | None = None):
        if blend_steps < 0:
            raise ValueError(f"blend_steps must be >= 0; got {blend_steps}.")
        self.blend_steps, self.ensemble_coeff = blend_steps, ensemble_coeff
        self._actions: dict[int, np.ndarray] = {}
        self._weights: dict[int, tuple[float, int]] = {}  # ensembling: tick -> (weight sum, predictions)
        self._played: dict[int, np.ndarray] = {}  # the last actions popped, by tick

    def insert(
        self,
        chunk: np.ndarray,
        first_tick: int,
        now_tick: int,
        last_command: np.ndarray | None,
        blend: bool = True,
    ) -> Insertion:
        """Merge ``chunk`` (actions for ticks ``first_tick …``) into the plan as of ``now_tick``;
        ``blend=False`` for a chunk that already continues the plan (computed with its prefix)."""
        stale = max(now_tick - first_tick, 0)
        fresh = {
            first_tick + i: np.asarray(a, np.float64)
            for i, a in enumerate(chunk)
            if first_tick + i >= now_tick
        }
        old = {t: a for t, a in self._actions.items() if t >= now_tick}
        if self.ensemble_coeff is not None and old:
            return self._ensemble(fresh, old, stale)
        if self.ensemble_coeff is not None:  # the first chunk of a plan: one prediction per tick
            self._weights = {t: (1.0, 1) for t in fresh}
        blended = 0
        # Fade from the old plan; where it has run out, from its last value (or the last command).
        anchor = None if last_command is None else np.asarray(last_command, np.float64)
        for j, tick in enumerate(sorted(fresh)[: self.blend_steps if blend else 0], start=1):
            anchor = old.get(tick, anchor)
            if anchor is None:
                break
            w = j / (self.blend_steps + 1)
            fresh[tick] = (1 - w) * anchor + w * fresh[tick]
            blended += 1
        first = min(fresh, default=None)
        join = None if first is None or first not in old else float(np.max(np.abs(fresh[first] - old[first])))
        self._actions = fresh
        return Insertion(stale, blended, len(fresh), join)

    def _ensemble(self, fresh: dict, old: dict, stale: int) -> Insertion:
        """Average ``fresh`` into the plan with ACT's temporal-ensembling weights."""
        merged = dict(old)
        for tick, action in fresh.items():
            total, count = self._weights.get(tick, (0.0, 0)) if tick in old else (0.0, 0)
            w = math.exp(-self.ensemble_coeff * count)
            merged[tick] = action if count == 0 else (old[tick] * total + w * action) / (total + w)
            self._weights[tick] = (total + w, count + 1)
        first = min(fresh, default=None)
        join = (
            None if first is None or first not in old else float(np.max(np.abs(merged[first] - old[first])))
        )
        self._actions = merged
        return Insertion(stale, 0, len(merged), join)

    def pop(self, tick: int) -> np.ndarray | None:
        """The action planned for ``tick`` (None: underrun); older entries are discarded."""
        for t in [t for t in self._actions if t < tick]:
            del self._actions[t]
            self._weights.pop(t, None)
        for t in [t for t in self._played if t < tick - PLAYED_KEPT]:
            del self._played[t]
        action = self._actions.pop(tick, None)
        if action is not None:
            self._played[tick] = action
        return action

    def committed(self, first_tick: int, count: int, stride: int = 1) -> np.ndarray | None:
        """The plan's actions for ticks ``first_tick, first_tick + stride, …`` (at most ``count``),
        stopping at the first tick it has none for; None when it has none at all."""
        known = self._played | self._actions
        actions = []
        for i in range(count):
            action = known.get(first_tick + i * stride)
            if action is None:
                break
            actions.append(action)
        return np.stack(actions) if actions else None

    def remaining(self, tick: int) -> int:
        return sum(1 for t in self._actions if t >= tick)

    def clear(self) -> None:
        self._actions.clear()
        self._played.clear()
        self._weights.clear()


class LatencyWindow:
    """Recent inference durations (s); the refill estimate is their p95 in ticks."""

    def __init__(self, window: int = 20, initial_s: float | None = None):
        self._samples: deque[float] = deque(maxlen=window)
        if initial_s is not None:
            self._samples.append(initial_s)

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)

    def p95_s(self) -> float:
        return float(np.percentile(self._samples, 95)) if self._samples else 0.0

    def ticks(self, fps: float) -> int:
        return math.ceil(self.p95_s() * fps)


def closest_candidate(candidates: np.ndarray, committed: np.ndarray | None) -> np.ndarray:
    """Best-of-K (backward coherence, Liu et al. arXiv 2408.17355): of ``candidates`` [K, T, A],
    the chunk whose first actions are closest (squared distance) to the ``committed`` plan [d, A];
    the first candidate, a fair draw, when there is no plan."""
    if committed is None:
        return candidates[0]
    d = min(len(committed), candidates.shape[1])
    distance = np.square(candidates[:, :d] - committed[None, :d]).sum(axis=(1, 2))
    return candidates[int(np.argmin(distance))]


def should_request(queued: int, latency_ticks: int, margin: int) -> bool:
    """Ask for the next chunk while enough is queued to cover the time it takes to compute."""
    return queued <= latency_ticks + margin


def upsample(chunk: np.ndarray, multiple: int) -> np.ndarray:
    """Linear interpolation of a chunk to a loop ``multiple`` times faster than the policy."""
    if multiple == 1:
        return chunk
    steps = np.arange((len(chunk) - 1) * multiple + 1) / multiple
    return np.stack(
        [np.interp(steps, np.arange(len(chunk)), chunk[:, j]) for j in range(chunk.shape[1])], axis=1
    )
