"""The policy's side of the loop: ask the inference worker for a chunk when the queue runs low,
merge what it returns onto the tick grid (runtime/chunks.py), pop this tick's action, and remember
which camera frame each queued action came from (for the end-to-end latency).

With a prefix-conditioned bundle each request carries the plan's remaining actions from the
request's tick on, up to the bundle's maximum prefix P: they cover at least the ticks the chunk will
find already executed when it arrives (a request is made while the queue still covers the measured
latency plus the refill margin), so the chunk continues the plan in progress and joins without a
cross-fade. Committing the whole remainder, not only the latency, keeps the plan the arm has
started (at the start of a reach one step barely tells left from right) at no cost in reaction
time beyond the refill margin.

With a bundle of K candidates (exported with ``--batch K``) the chunk kept is the candidate
closest to the plan's remaining actions (best-of-K); it is still cross-faded in.

An ACT checkpoint with temporal ensembling (``contract.ensemble_coeff``) is asked for a chunk every
policy step, as its ``select_action`` is, whenever the worker is free; the chunks are averaged on
the tick grid (``ChunkSchedule``)."""

import traceback

import numpy as np

from lerobot_policy_drift.runtime.backends import Backend
from lerobot_policy_drift.runtime.chunks import (
    ChunkSchedule,
    LatencyWindow,
    closest_candidate,
    should_request,
    upsample,
)
from lerobot_policy_drift.runtime.errors import SessionFault
from lerobot_policy_drift.runtime.monitor import LatencyMonitor
from lerobot_policy_drift.runtime.worker import InferenceRequest, InferenceWorker


class PolicyFeed:
    def __init__(
        self,
        backend: Backend,
        schedule: ChunkSchedule,
        latency: LatencyWindow,
        multiple: int,
        refill_margin: int,
        monitor: LatencyMonitor,
    ):
        self.backend, self.schedule, self.latency, self.monitor = backend, schedule, latency, monitor
        self.multiple, self.refill_margin = multiple, refill_margin  # loop ticks per policy step
        self.worker = InferenceWorker(backend)
        self.source_time: dict[int, float] = {}  # tick -> perf_counter of the frame its action saw
        self._last_request: int | None = None  # tick of the last request (ensembling: one per step)
        self.served: int | None = None  # the autonomy engagement whose chunk the plan last took

    def merge(self, k: int, epoch: int | None, last_command: np.ndarray, t_s: float) -> None:
        """Take a finished chunk into the plan at tick ``k`` if it belongs to autonomy engagement
        ``epoch`` (None: the policy does not drive now, so it is dropped)."""
        result = self.worker.poll()
        if result is None:
            return
        if result.error is not None:
            detail = "".join(traceback.format_exception_only(result.error)).strip()
            raise SessionFault("inference", f"the {self.backend.name} backend failed: {detail}")
        req = result.request
        if epoch is None or req.epoch != epoch:
            return  # computed for an autonomy phase that has ended
        actions = result.actions
        if actions.ndim == 3:  # K candidates: keep the one that continues the plan
            actions = closest_candidate(actions, req.committed)
        chunk = upsample(actions, self.multiple)
        prefixed = bool(req.feeds.get("action.prefix_length", [0])[0])
        insertion = self.schedule.insert(chunk, req.tick, k, last_command=last_command, blend=not prefixed)
        self.served = epoch
        for i in range(len(chunk)):
            self.source_time[req.tick + i] = req.source_time
        for stale_tick in [t for t in self.source_time if t < k]:
            del self.source_time[stale_tick]
        self.latency.add(result.seconds)
        self.monitor.chunk(t_s, result.seconds, insertion.stale_dropped, insertion.join_step)

    def request(self, k: int, feeds, source_time: float, epoch: int) -> None:
        """Ask for the next chunk (``feeds(committed)`` builds its inputs) if the queue would run out
        first."""
        if self.worker.busy:
            return
        contract = self.backend.contract
        lead = self.latency.ticks(contract.fps) * self.multiple
        every_step = contract.ensemble_coeff is not None and (
            self._last_request is None or k - self._last_request >= self.multiple
        )
        if every_step or should_request(self.schedule.remaining(k), lead, self.refill_margin * self.multiple):
            self._last_request = k
            steps = contract.max_prefix_steps or (contract.n_action_steps if contract.candidates > 1 else 0)
            committed = self.schedule.committed(k, steps, self.multiple) if steps else None
            prefix = committed if contract.max_prefix_steps else None
            self.worker.submit(InferenceRequest(feeds(prefix), k, source_time, epoch, committed))

    def pop(self, k: int) -> np.ndarray | None:
        return self.schedule.pop(k)

    def written(self, k: int, at: float) -> None:
        """The policy's action for tick ``k`` reached the bus at ``at`` (perf_counter)."""
        if k in self.source_time:
            self.monitor.e2e_ms.append((at - self.source_time.pop(k)) * 1e3)

    def clear(self) -> None:
        self.schedule.clear()

    def close(self) -> None:
        self.worker.close()
