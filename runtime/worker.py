"""The inference worker: one background thread computing one chunk at a time, off the tick thread."""

import threading
import time
from dataclasses import dataclass
from queue import Empty, Queue

import numpy as np

from lerobot_policy_drift.runtime.backends import Backend


@dataclass
class InferenceRequest:
    feeds: dict
    tick: int  # loop tick of the observation
    source_time: float  # perf_counter of the camera frame (or state read) it saw
    epoch: int  # autonomy engagement it belongs to
    committed: np.ndarray | None = None  # the plan's actions from ``tick`` on, policy steps apart


@dataclass
class InferenceResult:
    request: InferenceRequest
    actions: np.ndarray | None
    seconds: float
    error: BaseException | None


class InferenceWorker:
    """One background thread; at most one chunk in flight."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self._requests: Queue[InferenceRequest | None] = Queue()
        self._results: Queue[InferenceResult] = Queue()
        self.busy = False
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)
        self._thread.start()

    def submit(self, request: InferenceRequest) -> None:
        self.busy = True
        self._requests.put(request)

    def poll(self) -> InferenceResult | None:
        try:
            return self._results.get_nowait()
        except Empty:
            return None

    def _run(self) -> None:
        while (request := self._requests.get()) is not None:
            t0 = time.perf_counter()
            try:
                actions, error = self.backend.infer(request.feeds), None
            except Exception as err:  # handed to the tick thread, which ends the session
                actions, error = None, err
            self._results.put(InferenceResult(request, actions, time.perf_counter() - t0, error))
            self.busy = False

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join(timeout=5.0)
