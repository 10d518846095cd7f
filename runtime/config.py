"""``drift-run``'s options as one validated model (command line or a YAML/JSON file).

Every value is checked before anything connects; an invalid one raises ``ConfigError`` naming the
field and what is allowed. The safety limits are finite and bounded (``SAFETY_RANGES``): the safety
layer cannot be switched off by a huge, infinite or NaN value.
"""

import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lerobot_policy_drift.robots.adapters import AdapterName

# The safety layer's limits: (lowest, highest) accepted. Speeds are action units (degrees, or % of a
# 0-100 joint's range) per second; an STS3215 at 12 V turns ~270 °/s unloaded, so 360 covers every
# supported servo while still limiting a runaway policy.
SAFETY_RANGES = {
    "max_speed": (0.0, 360.0),  # units/s, exclusive of 0
    "max_accel": (0.0, 20_000.0),  # units/s², exclusive of 0
    "watchdog_ms": (0.0, 1000.0),  # exclusive of 0
    "fault_after_ms": (0.0, 10_000.0),  # exclusive of 0
    "bus_error_limit": (1, 100),
}


BUS_ORDERS = ("write-first", "read-first")  # when a tick writes its goal: at the deadline, or after the read


def _bounded(name: str, default, description: str, integer: bool = False):
    lo, hi = SAFETY_RANGES[name]
    if integer:
        return Field(default, ge=lo, le=hi, description=description)
    return Field(default, gt=lo, le=hi, allow_inf_nan=False, description=description)


class ConfigError(ValueError):
    """An invalid drift-run configuration; the message names the field."""


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    robot: Literal["so100", "so101", "koch"]
    port: str | None = Field(None, description="follower serial port (or use emulate)")
    emulate: bool = Field(False, description="start the built-in emulated arm and wire everything to it")
    adapter: AdapterName = Field(
        "ideal", description="with emulate: the emulated arm's USB adapter model (robots/adapters.py)"
    )
    robot_id: str = Field("drift", description="robot id: LeRobot's calibration file <id>.json")
    calibration_dir: Path | None = None
    bundle: Path | None = Field(None, description="drift-export bundle (the policy contract)")
    policy: Path | None = Field(
        None, description="drift, or LeRobot diffusion / act / vqbet checkpoint, --backend torch"
    )
    backend: Literal["ort", "torch", "tensorrt"] = "ort"
    ort_provider: Literal["auto", "cpu", "cuda", "tensorrt", "coreml"] = Field(
        "auto",
        description="ONNX Runtime execution provider; auto: the first of TensorRT, CUDA, CoreML, CPU that "
        "loads here and passes the golden-set gate",
    )
    precision: Literal["fp32", "fp16", "int8"] = Field(
        "fp32", description="which of the bundle's gated graphs runs (drift-export --fp16 / --int8)"
    )
    device: Literal["cpu", "cuda", "mps"] = Field(
        "cpu", description="where backend torch runs the policy (ONNX Runtime: ort_provider)"
    )
    inference_threads: int | None = Field(None, ge=1, le=256)
    inference_floor_ms: float = Field(
        0.0,
        ge=0,
        le=10_000,
        allow_inf_nan=False,
        description="no chunk returns sooner than this: rehearse a slower deploy machine's chunk time "
        "(a Jetson's, a longer sampler's) on this one",
    )
    cameras: dict[str, str] = Field(
        default_factory=dict, description="NAME -> opencv:INDEX_OR_PATH | zmq:HOST:PORT[/CAMERA_NAME]"
    )
    teleop_port: str | None = None
    teleop_id: str = "drift_leader"
    fps: int = Field(30, ge=1, le=1000, description="loop rate: the bundle's fps or a whole multiple of it")
    duration_s: float | None = Field(None, gt=0, allow_inf_nan=False)
    mode: Literal["auto", "teleop-first"] = "auto"
    report_dir: Path = Path("outputs/run")
    blend_steps: int = Field(3, ge=0, le=50, description="ticks cross-faded at every chunk join")
    refill_margin: int = Field(2, ge=0, le=100, description="ticks of slack over measured latency")
    latency_window: int = Field(20, ge=1, le=1000, description="chunks in the inference-latency window")
    max_speed: float = _bounded(
        "max_speed", 90.0, "per joint, action units per second (degrees/s, or %/s for 0-100 joints)"
    )
    max_accel: float | None = _bounded("max_accel", None, "per joint, units/s² (limits jerk); off by default")
    watchdog_ms: float = _bounded("watchdog_ms", 150.0, "no fresh observation for this long: hold position")
    fault_after_ms: float = _bounded("fault_after_ms", 1000.0, "a watchdog hold this long ends the session")
    bus_error_limit: int = _bounded(
        "bus_error_limit", 3, "consecutive failed bus ticks that end the session", integer=True
    )
    torque_off_on_exit: bool = True
    handover_s: float = Field(1.0, gt=0, le=10, description="duration of a teleop<->policy handover")
    control_pipe: Path | None = Field(None, description="FIFO accepting 'auto' / 'teleop' / 'stop' lines")
    record_dir: Path | None = Field(None, description="record teleoperated phases here as a LeRobot dataset")
    record_repo_id: str = Field("local/drift_teleop", description="repo id of the recorded dataset")
    bus_order: Literal[BUS_ORDERS] = Field(
        "write-first",
        description="write-first: each deadline writes the command computed during the previous tick, then "
        "reads (the servos get their goal on time; an observation acts one period later); read-first: read, "
        "then write this tick's command (LeRobot's order; the write waits for the read)",
    )
    spin_ms: float = Field(2.0, ge=0, le=20, description="spin (not sleep) this long before each deadline")
    background_nice: int = Field(
        10, ge=0, le=19, description="nice increment for the other threads (inference, cameras); 0 = off"
    )
    gil_switch_ms: float = Field(
        5.0,
        gt=0,
        le=100,
        description="Python's GIL switch interval during the loop; keep it above spin_ms, so that no "
        "other thread can take the GIL from the spinning tick thread before its deadline",
    )
    seed: int = 0
    noise: Literal["per-chunk", "per-engagement"] = Field(
        "per-chunk",
        description="per-chunk: a fresh N(0, I) draw for every chunk; per-engagement: one draw held from "
        "each handover to the policy until the next, for a plan that should not change its mind (on the "
        "demo's two-target reach it costs 13-23 points of success: BENCHMARKS.md §7.6)",
    )
    status: bool = Field(True, description="live one-line status in the terminal")

    @model_validator(mode="after")
    def _one_source(self) -> "RunConfig":
        if (self.port is None) == (not self.emulate):
            raise ValueError("give exactly one of port (a real arm) or emulate (the built-in emulated arm)")
        if self.bundle is None and self.policy is None:
            raise ValueError("give bundle (from drift-export) or policy (a checkpoint, with backend torch)")
        if self.mode == "teleop-first" and not (self.emulate or self.teleop_port):
            raise ValueError("mode teleop-first needs teleop_port (the leader arm) or emulate")
        if self.fault_after_ms < self.watchdog_ms:
            raise ValueError(
                f"fault_after_ms ({self.fault_after_ms:g}) must be at least watchdog_ms ({self.watchdog_ms:g})"
            )
        if self.adapter != "ideal" and not self.emulate:
            raise ValueError(
                "adapter models an emulated arm's USB adapter; a real arm has its own (use emulate)"
            )
        if self.emulate and self.cameras:
            raise ValueError(
                "cameras are created by emulate (named and sized as the bundle expects); drop cameras"
            )
        return self

    @classmethod
    def for_rig(cls, rig, leader: bool = False, **options) -> "RunConfig":
        """A session on a running ``robots.emulator.EmulatedRig``, wired as a real arm would be: its
        port, calibration, ``zmq`` cameras (and leader arm with ``leader``). For tests, benchmarks and
        scripted demos that act on the rig while the session runs."""
        cameras = {
            c["camera_name"]: f"zmq:{c['server_address']}:{c['port']}/{c['camera_name']}"
            for c in rig.info["cameras"]
        }
        wiring = {
            "robot": rig.plan.arm,
            "port": rig.follower_port,
            "robot_id": rig.info["id"],
            "calibration_dir": Path(rig.info["calibration_dir"]),
            "cameras": cameras,
        }
        if leader:
            wiring.update(teleop_port=rig.leader_port, teleop_id=rig.info["leader_id"])
        return cls(**{**wiring, **options})

    @classmethod
    def load(cls, path: Path | None = None, **overrides) -> "RunConfig":
        """From a YAML/JSON file (if given) with command-line ``overrides`` on top."""
        data = _read_config_file(Path(path)) if path is not None else {}
        data.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            problems = []
            for e in err.errors():
                where = ".".join(str(p) for p in e["loc"]) or "config"
                problems.append(f"{where}: {e['msg']}")
            raise ConfigError("invalid drift-run configuration: " + "; ".join(problems)) from None


def _read_config_file(path: Path) -> dict:
    """A ``--config`` file as a dict of options; any problem is a ``ConfigError`` naming the file."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"--config {path}: cannot read it ({err.strerror}).") from None
    try:
        data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--config {path}: not valid JSON (line {err.lineno}: {err.msg}).") from None
    except yaml.YAMLError as err:  # also a !!python/... tag, which safe_load refuses
        where = getattr(err, "problem_mark", None)
        line = f"line {where.line + 1}: " if where is not None else ""
        what = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(
            f"--config {path}: not valid YAML ({line}{what}); only plain values are read."
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"--config {path}: expected a mapping of option names to values, got a {type(data).__name__}."
        )
    return data


def camera_config(name: str, spec: str, width: int, height: int, fps: int):
    """LeRobot's camera config from ``opencv:INDEX_OR_PATH`` or ``zmq:HOST:PORT[/CAMERA_NAME]``."""
    kind, _, where = spec.partition(":")
    if kind == "opencv" and where:
        from lerobot.cameras.opencv import OpenCVCameraConfig

        index = int(where) if where.isdigit() else Path(where)
        return OpenCVCameraConfig(index_or_path=index, width=width, height=height, fps=fps)
    if kind == "zmq" and where.count(":") == 1:
        from lerobot_policy_drift.robots.arms import zmq_camera_config

        host, _, rest = where.partition(":")
        port, _, remote = rest.partition("/")
        if port.isdigit():
            return zmq_camera_config(host, int(port), remote or name, width, height, fps)
    raise ConfigError(
        f"camera {name}={spec!r}: expected opencv:INDEX_OR_PATH or zmq:HOST:PORT[/CAMERA_NAME]."
    )
