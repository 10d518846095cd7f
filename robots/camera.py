"""The emulated camera: renders the scene at a fixed rate and publishes it the way LeRobot's
``image_server.py`` does, so LeRobot's unmodified ``ZMQCamera`` reads it.

Message (one JSON string per frame on a ZMQ PUB socket):
``{"timestamps": {name: capture time, time.time()}, "images": {name: base64 JPEG}}``. Like
LeRobot's server, the RGB array goes to ``cv2.imencode`` as is, and ``ZMQCamera`` hands back what
``cv2.imdecode`` returns, i.e. RGB again.
"""

import base64
import json
import random
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np
import zmq

from lerobot_policy_drift.robots.faults import CameraFaults, updated


class CameraPublisher:
    def __init__(
        self,
        name: str,
        width: int,
        height: int,
        fps: int,
        draw: Callable[[], np.ndarray],
        port: int = 0,
        host: str = "127.0.0.1",
        quality: int = 85,
        faults: CameraFaults | None = None,
        seed: int = 0,
    ):
        self.name, self.width, self.height, self.fps = name, width, height, fps
        self.draw = draw
        self.host = host
        self.quality = quality
        self.faults = faults or CameraFaults()
        self.frames_published = 0
        self.last_timestamp = 0.0
        self._rng = random.Random(seed)
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.SNDHWM, 20)
        self._socket.setsockopt(zmq.LINGER, 0)
        address = f"tcp://{host}"
        self.port = self._socket.bind_to_random_port(address) if port == 0 else port
        if port:
            self._socket.bind(f"{address}:{port}")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera {name}", daemon=True)

    def start(self) -> "CameraPublisher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._socket.close()
        self._context.term()

    def set_faults(self, **changes) -> CameraFaults:
        self.faults = updated(self.faults, changes)
        return self.faults

    def encode(self, rgb: np.ndarray, timestamp: float) -> str:
        ok, jpeg = cv2.imencode(".jpg", rgb, [int(cv2.IMWRITE_JPEG_QUALITY), self.quality])
        if not ok:
            raise RuntimeError(f"camera {self.name}: JPEG encoding failed")
        image = base64.b64encode(jpeg.tobytes()).decode("ascii")
        return json.dumps({"timestamps": {self.name: timestamp}, "images": {self.name: image}})

    def _run(self) -> None:
        period = 1.0 / self.fps
        due = time.monotonic()
        while not self._stop.is_set():
            # Absolute deadlines; after a long stall the grid is re-anchored instead of bursting.
            due += period
            late = time.monotonic() - due
            if late > period:
                due += late
            self._stop.wait(max(due - time.monotonic(), 0.0))
            faults = self.faults
            if faults.stalled or self._rng.random() < faults.drop_rate:
                continue
            timestamp = time.time()
            message = self.encode(self.draw(), timestamp)
            try:
                self._socket.send_string(message, zmq.NOBLOCK)
            except zmq.Again:
                continue
            self.frames_published += 1
            self.last_timestamp = timestamp
