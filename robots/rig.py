"""An emulated rig: follower chain, optional leader chain and cameras, and a control socket.

A ``RigPlan`` is plain JSON (servo specs, calibration, ports, faults), so a rig can run in the
process that planned it (``drift-sim``) or in a child that never imports LeRobot or torch
(``python -m lerobot_policy_drift.robots.rig PLAN.json``, what ``EmulatedRig`` starts for tests and ``drift-run
--emulate``: a servo in another process, as on hardware). The control socket (a Unix socket in the
rig's private run folder) lets a test change faults, move the leader or read servo state while
LeRobot's classes are connected.
"""

import json
import signal
import sys
import threading
import time
from multiprocessing.connection import Listener
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from lerobot_policy_drift.robots.adapters import ADAPTERS, AdapterName
from lerobot_policy_drift.robots.camera import CameraPublisher
from lerobot_policy_drift.robots.chain import ServoChain
from lerobot_policy_drift.robots.dynamics import JointDynamics
from lerobot_policy_drift.robots.faults import BusFaults, CameraFaults
from lerobot_policy_drift.robots.scene import SceneObject, joint_angles, render
from lerobot_policy_drift.robots.servo import Servo
from lerobot_policy_drift.robots.servo_spec import DYNAMIXEL, ServoSpec

CONTROL_AUTHKEY = b"drift-sim"  # the socket lives in a 0700 folder; the key only guards against strays
# No-load slew rate (ticks/s) per model, from the makers' data sheets; the lag constant is shared.
NO_LOAD_SPEED = {"sts3215": 3000.0, "xl430-w250": 3900.0, "xl330-m288": 7000.0, "xl330-m077": 12000.0}
LAG_S = 0.03
GIL_SWITCH_S = 0.0002  # the rig process's GIL switch interval (run_until_signalled)


class ChainPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    protocol: str
    motors: dict[str, int]  # name -> servo id, in the driver's order
    specs: dict[str, dict]  # name -> ServoSpec.to_json()
    calibration: dict[str, dict]  # name -> LeRobot MotorCalibration fields
    port: str  # the stable path (symlink) clients open
    faults: BusFaults = Field(default_factory=BusFaults)
    adapter: AdapterName = "ideal"  # how its USB adapter delivers replies (robots/adapters.py)


class CameraPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "front"
    width: int = Field(640, ge=16, le=4096)
    height: int = Field(480, ge=16, le=4096)
    fps: int = Field(30, ge=1, le=240)
    port: int = Field(0, ge=0, le=65535, description="0: any free port")
    faults: CameraFaults = Field(default_factory=CameraFaults)


class RigPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arm: str
    run_dir: str
    follower: ChainPlan
    follower_id: str
    follower_calibration_dir: str
    leader: ChainPlan | None = None
    leader_id: str | None = None
    leader_calibration_dir: str | None = None
    cameras: list[CameraPlan] = Field(default_factory=list)
    seed: int = 0
    gil_switch_s: float = Field(
        GIL_SWITCH_S, gt=0, le=0.1, description="the rig process's GIL switch interval"
    )


def build_servos(plan: ChainPlan, now: float) -> list[Servo]:
    """Servos as a calibrated, set-up arm has them: LeRobot's baud rate, calibration in EEPROM."""
    servos = []
    for name, servo_id in plan.motors.items():
        spec = ServoSpec.from_json(plan.specs[name])
        servo = Servo(spec, servo_id, JointDynamics(NO_LOAD_SPEED.get(spec.model, 3000.0), LAG_S), now)
        cal = plan.calibration[name]
        servo.put("Baud_Rate", spec.baudrates[1_000_000])
        servo.put("Homing_Offset", cal["homing_offset"])
        servo.put("Min_Position_Limit", cal["range_min"])
        servo.put("Max_Position_Limit", cal["range_max"])
        if spec.protocol == DYNAMIXEL:
            servo.put("Drive_Mode", cal["drive_mode"])
        servo.flash = bytes(servo.memory[: spec.eeprom_end])
        servo.set_present((cal["range_min"] + cal["range_max"]) / 2)  # resting mid-range
        servos.append(servo)
    return servos


class Rig:
    def __init__(self, plan: RigPlan):
        self.plan = plan
        now = time.monotonic()
        self.follower = ServoChain(
            plan.follower.protocol,
            build_servos(plan.follower, now),
            Path(plan.follower.port),
            plan.follower.faults,
            seed=plan.seed,
            adapter=ADAPTERS[plan.follower.adapter],
        )
        self.leader = None
        if plan.leader is not None:
            self.leader = ServoChain(
                plan.leader.protocol,
                build_servos(plan.leader, now),
                Path(plan.leader.port),
                plan.leader.faults,
                seed=plan.seed + 1,
                adapter=ADAPTERS[plan.leader.adapter],
            )
        self.objects: tuple[SceneObject, ...] = ()
        names = [c.name for c in plan.cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must differ; got {names}.")
        self.cameras = {
            c.name: CameraPublisher(
                c.name,
                c.width,
                c.height,
                c.fps,
                self._drawer(c),
                port=c.port,
                faults=c.faults,
                seed=plan.seed + i,
            )
            for i, c in enumerate(plan.cameras)
        }
        self.control_path = Path(plan.run_dir) / "control.sock"
        self._listener: Listener | None = None

    def _drawer(self, cam: CameraPlan):
        names = {servo_id: name for name, servo_id in self.plan.follower.motors.items()}

        def draw():
            present = {names[i]: s["Present_Position"] for i, s in self.follower.snapshot().items()}
            angles = joint_angles(present, self.plan.follower.calibration)
            return render(angles, cam.width, cam.height, self.objects)

        return draw

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "Rig":
        self.follower.start()
        if self.leader is not None:
            self.leader.start()
        for camera in self.cameras.values():
            camera.start()
        self._listener = Listener(str(self.control_path), family="AF_UNIX", authkey=CONTROL_AUTHKEY)
        threading.Thread(target=self._serve_control, name="rig control", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for camera in self.cameras.values():
            camera.stop()
        for chain in (self.follower, self.leader):
            if chain is not None:
                chain.stop()
        self.control_path.unlink(missing_ok=True)

    def describe(self) -> dict:
        """The one JSON line ``drift-sim`` prints: where LeRobot's classes should connect."""
        cameras = [
            {
                "type": "zmq",
                "server_address": cam.host,
                "port": cam.port,
                "camera_name": cam.name,
                "width": cam.width,
                "height": cam.height,
                "fps": cam.fps,
            }
            for cam in self.cameras.values()
        ]
        return {
            "robot": self.plan.arm,
            "follower_port": self.plan.follower.port,
            "leader_port": self.plan.leader.port if self.plan.leader else None,
            "camera": cameras[0] if cameras else None,
            "cameras": cameras,
            "calibration_dir": self.plan.follower_calibration_dir,
            "id": self.plan.follower_id,
            "leader_calibration_dir": self.plan.leader_calibration_dir,
            "leader_id": self.plan.leader_id,
            "control": str(self.control_path),
        }

    # -- control -------------------------------------------------------------------------------
    def chain(self, device: str) -> ServoChain:
        chain = {"follower": self.follower, "leader": self.leader}.get(device)
        if chain is None:
            raise ValueError(
                f"this rig has no {device!r} arm (it has: follower{', leader' if self.leader else ''})."
            )
        return chain

    def state(self, device: str = "follower") -> dict[int, dict]:
        return self.chain(device).snapshot()

    def set_bus_faults(self, device: str = "follower", **changes) -> dict:
        return self.chain(device).set_faults(**changes).model_dump()

    def set_camera_faults(self, camera: str | None = None, **changes) -> dict:
        """Faults of ``camera`` (by name; the only one when omitted)."""
        if not self.cameras:
            raise ValueError("this rig has no camera.")
        if camera is None and len(self.cameras) > 1:
            raise ValueError(f"name the camera: this rig has {sorted(self.cameras)}.")
        name = camera or next(iter(self.cameras))
        if name not in self.cameras:
            raise ValueError(f"no camera {name!r}; this rig has {sorted(self.cameras)}.")
        return self.cameras[name].set_faults(**changes).model_dump()

    def set_leader_script(self, script) -> None:
        self.chain("leader").set_script(script)

    def set_objects(self, objects: list[SceneObject]) -> None:
        self.objects = tuple(objects)

    def power_cycle(self, device: str = "follower") -> None:
        self.chain(device).power_cycle()

    def sync_write_times(self, device: str = "follower") -> list[float]:
        return self.chain(device).take_sync_write_times()

    def stats(self) -> dict:
        return {
            "follower_transactions": self.follower.transactions,
            "leader_transactions": self.leader.transactions if self.leader else None,
            "servo_thread_priority": self.follower.thread_priority,
            "gil_switch_s": sys.getswitchinterval(),
            "camera_frames": {n: c.frames_published for n, c in self.cameras.items()},
            "camera_last_timestamp": {n: c.last_timestamp for n, c in self.cameras.items()},
        }

    _CONTROL_METHODS = frozenset(
        {
            "state",
            "set_bus_faults",
            "set_camera_faults",
            "set_leader_script",
            "set_objects",
            "power_cycle",
            "stats",
            "sync_write_times",
        }
    )

    def _serve_control(self) -> None:
        while self._listener is not None:
            try:
                conn = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_client, args=(conn,), daemon=True).start()

    def _serve_client(self, conn) -> None:
        with conn:
            while True:
                try:
                    method, kwargs = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    if method not in self._CONTROL_METHODS:
                        raise ValueError(f"unknown control method {method!r}")
                    conn.send(("ok", getattr(self, method)(**kwargs)))
                except Exception as err:  # sent back to the caller, who raises it
                    conn.send(("error", f"{type(err).__name__}: {err}"))


def run_until_signalled(rig: Rig, owned: bool = False) -> None:
    """Print the rig's JSON line, then serve until SIGINT/SIGTERM, and clean up.

    An ``owned`` rig (an ``EmulatedRig``'s child, started with SIGINT ignored) serves until its
    parent terminates it or dies (its stdin closes), and ignores SIGINT: a terminal's Ctrl-C
    reaches the whole foreground group, and a real arm does not vanish when the user presses it,
    so the parent's own stop (torque off, disconnect) must still find the servos there.

    The rig's process hands the GIL over every ``plan.gil_switch_s`` (0.2 ms): a servo chain's
    thread sleeps in ``select`` until each reply is due and needs the GIL back to write it, and at
    Python's default 5 ms a camera thread drawing a frame could hold it that long per reply sent
    apart (six a sync read at the factory Return_Delay_Time, what drift-doctor reads), which is
    not what a servo does. Measured side by side on single-chain rigs it made no difference
    (BENCHMARKS "A camera beside the servos"); it costs nothing."""
    sys.setswitchinterval(rig.plan.gil_switch_s)
    done = threading.Event()
    for sig in (signal.SIGTERM,) if owned else (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    if owned:  # the parent holds our stdin: when it dies, we go too
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    try:
        print(json.dumps(rig.describe()), flush=True)
        while not done.wait(0.5):
            pass
    finally:
        rig.stop()


def main() -> None:
    plan = RigPlan.model_validate_json(Path(sys.argv[1]).read_text())
    run_until_signalled(Rig(plan).start(), owned=True)


if __name__ == "__main__":
    main()
