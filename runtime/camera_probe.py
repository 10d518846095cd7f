"""Is a ZMQ camera serving frames? Asked on our own socket, before LeRobot's ``ZMQCamera`` connects.

Why not let ``ZMQCamera.connect()`` find out: when its warm-up gets no frame it closes its socket
and terminates its context while its own read thread is still blocked in ``recv`` on that socket.
libzmq does not allow that; now and then it ends the process with
``Assertion failed: pfd.revents & POLLIN (src/signaler.cpp)`` (SIGABRT; seen in LeRobot 0.6,
on the 16th failed connect in one run here). A camera that is not serving is therefore found here, with
one socket used and closed by one thread, and named before anything connects.

The same probe measures a camera's real rate and frame age for ``drift-doctor``.
"""

import base64
import json
import time
from dataclasses import dataclass

import cv2
import numpy as np
import zmq


@dataclass
class CameraProbe:
    address: str  # tcp://host:port
    camera: str  # the name inside the server's messages
    frames: int  # frames of this camera received in the window
    seconds: float  # how long it listened
    shape: tuple[int, ...] | None  # the last frame's (height, width, channels)
    age_ms: float | None  # receive time minus the server's capture timestamp, last frame
    served: tuple[str, ...]  # camera names the server's messages carried
    problem: str | None  # why no usable frame arrived, or None
    span_s: float  # from the first frame received to the last

    @property
    def fps(self) -> float | None:
        """The rate frames arrived at (None with fewer than two)."""
        return (self.frames - 1) / self.span_s if self.frames > 1 and self.span_s > 0 else None


def probe_zmq(host: str, port: int, camera: str, seconds: float, first_frame_s: float) -> CameraProbe:
    """Listen to ``tcp://host:port`` for up to ``first_frame_s`` for a first frame of ``camera``,
    then until ``seconds`` have passed since listening began. Never raises for a dead camera."""
    address = f"tcp://{host}:{port}"
    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt_string(zmq.SUBSCRIBE, "")
    socket.setsockopt(zmq.RCVTIMEO, 50)
    frames, shape, age_ms, first, last = 0, None, None, None, None
    served: set[str] = set()
    problem = None
    start = time.monotonic()
    try:
        socket.connect(address)
        while True:
            now = time.monotonic()
            if now - start >= (seconds if frames else max(seconds, first_frame_s)):
                break
            try:
                message = socket.recv_string()
            except zmq.Again:
                continue
            received = time.time()
            try:
                data = json.loads(message)
                images = data["images"]
                served.update(images)
                if camera not in images:
                    continue
                frame = cv2.imdecode(
                    np.frombuffer(base64.b64decode(images[camera]), np.uint8), cv2.IMREAD_COLOR
                )
            except (ValueError, KeyError, TypeError) as err:
                problem = f"{address} sends messages that are not LeRobot image-server frames ({err})"
                continue
            if frame is None:
                problem = f"{address}: a frame of {camera!r} is not a decodable JPEG"
                continue
            frames += 1
            shape = tuple(frame.shape)
            stamp = data.get("timestamps", {}).get(camera)
            age_ms = (received - stamp) * 1000 if isinstance(stamp, int | float) else None
            first = first if first is not None else time.monotonic()
            last = time.monotonic()
    except zmq.ZMQError as err:
        problem = f"{address}: {err}"
    finally:
        socket.close()
        context.term()
    listened = time.monotonic() - start
    if frames:
        problem = None
    elif problem is None:
        problem = (
            f"{address} serves {sorted(served)}, not {camera!r}"
            if served
            else f"no frame from {address} within {listened:.1f} s"
        )
    span = last - first if frames else 0.0
    return CameraProbe(address, camera, frames, listened, shape, age_ms, tuple(sorted(served)), problem, span)
