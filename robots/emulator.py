"""Planning an emulated rig from LeRobot's own definitions, and running it in a child process.

``plan_rig`` asks LeRobot for the motor table and control tables of an arm, writes (or reuses)
LeRobot's calibration files, and returns a ``RigPlan``. ``EmulatedRig`` runs that plan in a child
process (``robots/rig.py``, see ``_CHILD``) and is the handle a test or ``drift-run --emulate`` holds:
ports and camera address to give LeRobot, plus control calls (faults, leader script, servo state)
that take effect while LeRobot is connected.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from multiprocessing.connection import Client
from pathlib import Path

from lerobot_policy_drift.robots.adapters import ADAPTERS
from lerobot_policy_drift.robots.arms import arm_spec, motor_table, zmq_camera_config
from lerobot_policy_drift.robots.calibration import calibration_file, default_calibration, load_or_write
from lerobot_policy_drift.robots.faults import BusFaults
from lerobot_policy_drift.robots.rig import CONTROL_AUTHKEY, GIL_SWITCH_S, CameraPlan, ChainPlan, RigPlan
from lerobot_policy_drift.robots.scene import SceneObject
from lerobot_policy_drift.robots.servo_spec import servo_spec


def chain_plan(
    arm: str, role: str, port: Path, device_id: str, calibration_dir: Path | None
) -> tuple[ChainPlan, Path]:
    """One arm's servo chain (LeRobot's motor table and control tables) and its calibration folder."""
    protocol = arm_spec(arm).protocol
    motors = motor_table(arm, role)
    ids = {name: motor.id for name, motor in motors.items()}
    path = calibration_file(arm, role, device_id, calibration_dir)
    calibration = load_or_write(path, default_calibration(arm, ids))
    specs = {name: servo_spec(protocol, motor.model).to_json() for name, motor in motors.items()}
    return ChainPlan(
        protocol=protocol, motors=ids, specs=specs, calibration=calibration, port=str(port)
    ), path.parent


def plan_rig(
    arm: str,
    run_dir: Path,
    robot_id: str = "drift_sim",
    leader: bool = False,
    cameras: list[CameraPlan] | None = None,
    calibration_dir: Path | None = None,
    faults: BusFaults | None = None,
    seed: int = 0,
    adapter: str = "ideal",
    gil_switch_s: float = GIL_SWITCH_S,
) -> RigPlan:
    """The plan of an emulated ``arm`` whose ports live in ``run_dir``.

    Calibration files go where LeRobot looks for ``robot_id`` (follower) and ``<robot_id>_leader``:
    ``calibration_dir`` if given, else LeRobot's default folders. An existing file is reused, so an
    emulated arm can be created from a calibration a lab recorded. ``adapter``: the USB adapter
    model of both arms (``robots/adapters.py``). ``gil_switch_s``: the rig process's GIL switch
    interval (``robots.rig.run_until_signalled``; Python's 5 ms only to measure what it costs).
    """
    arm_spec(arm)  # a clear error for an unknown arm before anything is written
    if adapter not in ADAPTERS:
        raise ValueError(f"unknown adapter {adapter!r}; expected one of {', '.join(ADAPTERS)}.")
    run_dir = Path(run_dir)
    follower, follower_dir = chain_plan(arm, "follower", run_dir / "follower", robot_id, calibration_dir)
    follower = follower.model_copy(update={"adapter": adapter, **({"faults": faults} if faults else {})})
    plan = {"arm": arm, "run_dir": str(run_dir), "follower": follower, "follower_id": robot_id}
    plan["follower_calibration_dir"] = str(follower_dir)
    if leader:
        leader_id = f"{robot_id}_leader"
        chain, leader_dir = chain_plan(arm, "leader", run_dir / "leader", leader_id, calibration_dir)
        chain = chain.model_copy(update={"adapter": adapter})
        plan.update(leader=chain, leader_id=leader_id, leader_calibration_dir=str(leader_dir))
    return RigPlan(**plan, cameras=cameras or [], seed=seed, gil_switch_s=gil_switch_s)


# The child runs ``lerobot_policy_drift.robots.rig`` and must not import LeRobot or torch. The
# package root is LeRobot's plugin entry (importing it registers the policy, which imports both), so
# the child starts from a stand-in for the root that knows only where its subpackages are.
_ROOT = __name__.split(".")[0]
_CHILD = (  # born ignoring SIGINT (a terminal's Ctrl-C): see run_until_signalled's ``owned``
    "import runpy, signal, sys, types\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    f"root = types.ModuleType({_ROOT!r})\n"
    f"root.__path__ = {list(sys.modules[_ROOT].__path__)!r}\n"
    f"sys.modules[{_ROOT!r}] = root\n"
    f"runpy.run_module({_ROOT + '.robots.rig'!r}, run_name='__main__', alter_sys=True)\n"
)


class EmulatorError(RuntimeError):
    pass


class EmulatedRig:
    """A rig running in a child process. Use as a context manager; ``close()`` stops it cleanly."""

    def __init__(self, plan: RigPlan):
        self.plan = plan
        plan_file = Path(plan.run_dir) / "plan.json"
        plan_file.write_text(plan.model_dump_json())
        self.log_file = Path(plan.run_dir) / "rig.log"
        with open(self.log_file, "w") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(plan_file)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait()
            raise EmulatorError(
                f"the emulated {plan.arm} did not start:\n{self.log_file.read_text().strip()}"
            )
        self.info = json.loads(line)
        self._conn = Client(self.info["control"], family="AF_UNIX", authkey=CONTROL_AUTHKEY)

    @classmethod
    def start(cls, arm: str, run_dir: Path | None = None, **plan_options) -> "EmulatedRig":
        """Plan and start an emulated ``arm`` (``plan_options``: see ``plan_rig``)."""
        owned = run_dir is None  # a temporary folder of ours: removed again by close()
        run_dir = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix=f"drift-sim-{arm}-"))
        run_dir.mkdir(parents=True, exist_ok=True)
        run_dir.chmod(0o700)
        if "calibration_dir" not in plan_options:
            plan_options["calibration_dir"] = run_dir / "calibration"
        try:
            rig = cls(plan_rig(arm, run_dir, **plan_options))
        except BaseException:
            if owned:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        rig._owned_dir = run_dir if owned else None
        return rig

    # -- what LeRobot connects to ------------------------------------------------------------
    @property
    def follower_port(self) -> str:
        return self.info["follower_port"]

    @property
    def leader_port(self) -> str | None:
        return self.info["leader_port"]

    def follower_config(self, **options):
        from lerobot_policy_drift.robots.arms import follower_config

        cameras = {cam["camera_name"]: self.camera_config(cam["camera_name"]) for cam in self.info["cameras"]}
        options.setdefault("cameras", cameras)
        return follower_config(
            self.plan.arm, self.follower_port, self.info["id"], Path(self.info["calibration_dir"]), **options
        )

    def leader_config(self):
        from lerobot_policy_drift.robots.arms import leader_config

        if self.leader_port is None:
            raise EmulatorError("this rig was started without a leader arm.")
        return leader_config(
            self.plan.arm, self.leader_port, self.info["leader_id"], Path(self.info["leader_calibration_dir"])
        )

    def camera_config(self, name: str | None = None):
        """LeRobot's ``zmq`` camera config for the rig's camera ``name`` (the first when omitted)."""
        cams = {cam["camera_name"]: cam for cam in self.info["cameras"]}
        if not cams:
            raise EmulatorError("this rig was started without a camera.")
        cam = cams[name] if name is not None else self.info["camera"]
        return zmq_camera_config(
            cam["server_address"], cam["port"], cam["camera_name"], cam["width"], cam["height"], cam["fps"]
        )

    def robot_cli_args(self) -> list[str]:
        """The ``--robot.*`` arguments with which LeRobot's own CLIs (``lerobot-rollout``,
        ``lerobot-record``) reach this rig's follower and cameras, as they would a real arm."""
        cameras = ", ".join(
            f"{c['camera_name']}: {{type: zmq, server_address: {c['server_address']}, port: {c['port']}, "
            f"camera_name: {c['camera_name']}, width: {c['width']}, height: {c['height']}, fps: {c['fps']}}}"
            for c in self.info["cameras"]
        )
        return [
            f"--robot.type={self.follower_config().type}",
            f"--robot.port={self.follower_port}",
            f"--robot.id={self.info['id']}",
            f"--robot.calibration_dir={self.info['calibration_dir']}",
            f"--robot.cameras={{{cameras}}}",
        ]

    # -- control -------------------------------------------------------------------------------
    def _call(self, method: str, **kwargs):
        self._conn.send((method, kwargs))
        status, value = self._conn.recv()
        if status != "ok":
            raise EmulatorError(value)
        return value

    def state(self, device: str = "follower") -> dict[int, dict]:
        """Register view per servo id (Present/Goal_Position, Torque_Enable, calibration, …)."""
        return self._call("state", device=device)

    def set_bus_faults(self, device: str = "follower", **changes) -> dict:
        """e.g. ``set_bus_faults(drop_rate=1.0)``, ``set_bus_faults(unplugged=True)``."""
        return self._call("set_bus_faults", device=device, **changes)

    def set_camera_faults(self, camera: str | None = None, **changes) -> dict:
        """e.g. ``set_camera_faults(stalled=True)``; name the camera when the rig has several."""
        return self._call("set_camera_faults", camera=camera, **changes)

    def set_leader_script(self, script) -> None:
        """A picklable ``t -> ticks per leader servo`` (see ``robots.leader_scripts``)."""
        self._call("set_leader_script", script=script)

    def set_objects(self, objects: list[SceneObject]) -> None:
        self._call("set_objects", objects=objects)

    def power_cycle(self, device: str = "follower") -> None:
        self._call("power_cycle", device=device)

    def sync_write_times(self, device: str = "follower") -> list[float]:
        """Emulator-side arrival times (monotonic s) of SYNC_WRITEs since the last call."""
        return self._call("sync_write_times", device=device)

    def stats(self) -> dict:
        return self._call("stats")

    def close(self) -> None:
        if self._proc.poll() is None:
            self._conn.close()
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc.stdin.close()
        self._proc.stdout.close()
        if getattr(self, "_owned_dir", None) is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)

    def __enter__(self) -> "EmulatedRig":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
