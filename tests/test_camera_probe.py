"""The ZMQ camera probe drift-run asks before LeRobot connects a camera (and drift-doctor reports):
against the emulated camera's real publisher, a silent port, a wrong camera name and junk."""

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import zmq

from lerobot_policy_drift.robots.camera import CameraPublisher
from lerobot_policy_drift.runtime.camera_probe import probe_zmq


def publisher(name="front", fps=30, **kw) -> CameraPublisher:
    return CameraPublisher(name, 64, 48, fps, lambda: np.full((48, 64, 3), 90, np.uint8), **kw).start()


def test_a_serving_camera_reports_its_frames_rate_shape_and_age():
    cam = publisher(fps=30)
    try:
        probe = probe_zmq("127.0.0.1", cam.port, "front", seconds=1.5, first_frame_s=2.0)
    finally:
        cam.stop()
    assert probe.problem is None and probe.served == ("front",)
    assert probe.shape == (48, 64, 3)
    assert probe.frames >= 10 and 10 < probe.fps < 45  # 30 fps published; a loaded machine drops some
    assert 0 <= probe.age_ms < 1000


def test_a_first_frame_ends_a_zero_second_probe():
    cam = publisher()
    try:
        t0 = time.monotonic()
        probe = probe_zmq("127.0.0.1", cam.port, "front", seconds=0.0, first_frame_s=5.0)
        took = time.monotonic() - t0
    finally:
        cam.stop()
    assert probe.problem is None and probe.frames == 1 and probe.fps is None and took < 4.0


def test_silence_a_stalled_server_and_a_wrong_name_are_problems_not_exceptions():
    with zmq.Context() as ctx, ctx.socket(zmq.PUB) as unused:
        port = unused.bind_to_random_port("tcp://127.0.0.1")
        unused.close()
        silent = probe_zmq("127.0.0.1", port, "front", 0.0, 0.3)
    assert silent.frames == 0 and silent.problem.startswith(f"no frame from tcp://127.0.0.1:{port} within")
    cam = publisher()
    try:
        wrong = probe_zmq("127.0.0.1", cam.port, "wrist", 0.0, 0.5)
        cam.set_faults(stalled=True)
        time.sleep(0.1)
        stalled = probe_zmq("127.0.0.1", cam.port, "front", 0.0, 0.3)
    finally:
        cam.stop()
    assert wrong.problem == f"tcp://127.0.0.1:{cam.port} serves ['front'], not 'wrist'"
    assert stalled.frames == 0 and "no frame" in stalled.problem


def test_messages_that_are_not_image_server_frames_are_named():
    with zmq.Context() as ctx, ctx.socket(zmq.PUB) as pub, ThreadPoolExecutor(1) as pool:
        port = pub.bind_to_random_port("tcp://127.0.0.1")
        probe = pool.submit(probe_zmq, "127.0.0.1", port, "front", 0.0, 0.8)
        while not probe.done():
            pub.send_string("not json")
            time.sleep(0.02)
    assert probe.result().frames == 0 and "not LeRobot image-server frames" in probe.result().problem
