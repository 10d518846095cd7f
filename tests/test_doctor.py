"""drift-doctor against the emulated arm: it passes on a sound set-up and names the fix for each
injected fault (missing port, no permission, missing or foreign calibration, the wrong robot type
on the port, both ONNX Runtime builds, a stalled camera, a slow adapter), and it moves nothing."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lerobot_policy_drift.robots.emulator import EmulatedRig
from lerobot_policy_drift.robots.rig import CameraPlan
from lerobot_policy_drift.runtime.config import RunConfig
from lerobot_policy_drift.runtime.doctor import camera_check, main
from lerobot_policy_drift.runtime.doctor_arm import adapter_check, arm_checks
from lerobot_policy_drift.runtime.doctor_machine import jetson_check, onnxruntime_checks, python_check

SYS = Path("/sys")


@pytest.fixture
def rig(tmp_path):
    with EmulatedRig.start(
        "so100", tmp_path / "rig", cameras=[CameraPlan(name="front", width=64, height=48)]
    ) as rig:
        yield rig


def arm(rig, robot="so100", calibration_dir=None, fps=30):
    cal = calibration_dir or Path(rig.info["calibration_dir"])
    return {c.name: c for c in arm_checks("arm", robot, rig.follower_port, rig.info["id"], cal, fps, SYS)}


def test_the_emulated_arm_passes_every_check(so100_policy, capsys):
    _, bundle = so100_policy
    assert main(["--robot", "so100", "--emulate", "--bundle", str(bundle), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    verdicts = {c["name"]: c["verdict"] for c in out["checks"]}
    assert out["ok"] and "fail" not in verdicts.values()
    for name in ("arm: motors", "arm: calibration", "arm: bus cycle", "leader arm: motors", "camera front"):
        assert verdicts[name] == "ok", out
    assert verdicts["golden set on cpu"] == "ok" and verdicts["policy against robot"] == "ok"


def test_a_sound_real_style_set_up_reads_without_writing(rig):
    before = rig.state()
    checks = arm(rig)
    assert {c.verdict for c in checks.values()} == {"ok"}, checks
    assert "6 answer" in checks["arm: motors"].detail and "sustains" in checks["arm: bus cycle"].detail
    assert rig.state() == before  # no register written: torque, goals, everything as it was


def test_a_missing_port_is_named_with_how_to_find_it(tmp_path, capsys):
    assert main(["--robot", "so100", "--port", str(tmp_path / "ttyACM9"), "--json"]) == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["arm: port"]["verdict"] == "fail" and "does not exist" in checks["arm: port"]["detail"]
    assert "lerobot-find-port" in checks["arm: port"]["fix"] and "arm: motors" not in checks


def test_a_port_this_user_may_not_open_names_the_group_to_join(rig):
    """As an unprivileged user (root may open anything): drift-doctor's port check in a child
    process that drops to nobody once its imports are done, on the emulated arm's device node."""
    device = os.path.realpath(rig.follower_port)
    drop = "os.setgroups([]); os.setgid(65534); os.setuid(65534); " if os.geteuid() == 0 else ""
    if not drop:
        os.chmod(device, 0)
    code = (
        "import json, os, sys; from lerobot_policy_drift.runtime.doctor_arm import port_check; "
        f"{drop}print(json.dumps(port_check('arm', sys.argv[1]).as_dict()))"
    )
    out = subprocess.run([sys.executable, "-c", code, device], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    check = json.loads(out.stdout)
    assert check["verdict"] == "fail" and "may not read and write it" in check["detail"], check
    if sys.platform.startswith("linux"):
        assert "sudo usermod -aG" in check["fix"]


def test_a_missing_calibration_and_a_foreign_one_say_to_calibrate(rig, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = arm(rig, calibration_dir=empty)
    assert (
        missing["arm: calibration"].verdict == "fail"
        and "lerobot-calibrate" in missing["arm: calibration"].fix
    )
    assert missing["arm: motors"].verdict == "ok"  # the servos are still checked
    foreign = tmp_path / "foreign"
    shutil.copytree(rig.info["calibration_dir"], foreign)
    path = foreign / f"{rig.info['id']}.json"
    cal = json.loads(path.read_text())
    cal["shoulder_pan"]["homing_offset"] += 300  # another arm's offsets
    path.write_text(json.dumps(cal))
    check = arm(rig, calibration_dir=foreign)["arm: calibration"]
    assert check.verdict == "fail" and "does not match the servos" in check.detail
    assert f"--robot.id={rig.info['id']}" in check.fix


def test_the_wrong_robot_type_on_the_port_names_the_right_one(rig):
    check = arm(rig, robot="koch")["arm: motors"]
    assert check.verdict == "fail" and "so100-type servos do" in check.detail and "--robot so100" in check.fix


def test_both_onnx_runtime_builds_installed_is_a_failure_with_its_fix():
    first, _ = onnxruntime_checks(["onnxruntime", "onnxruntime-gpu"])
    assert first.verdict == "fail" and "both installed" in first.detail
    assert first.fix == "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"
    sound, providers = onnxruntime_checks(["onnxruntime"])
    assert sound.verdict == "ok" and providers.verdict == "ok" and "cpu" in providers.detail


def test_a_stalled_camera_fails_and_a_live_one_reports_its_rate(rig):
    spec = RunConfig.for_rig(rig, bundle=Path("-")).cameras["front"]
    live = camera_check("front", spec, (48, 64), 20)  # a 30 fps camera: margin for a loaded machine
    assert live.verdict == "ok" and "fps, frame age" in live.detail
    slow = camera_check("front", spec, (48, 64), 60)  # a 30 fps camera for a 60 Hz loop
    assert slow.verdict == "fail" and "below the 60 Hz loop" in slow.detail
    wrong_size = camera_check("front", spec, (96, 96), 30)
    assert wrong_size.verdict == "fail" and "the policy reads 96x96" in wrong_size.detail
    rig.set_camera_faults(stalled=True)
    stalled = camera_check("front", spec, (48, 64), 30)
    assert stalled.verdict == "fail" and "no frame from" in stalled.detail and "image server" in stalled.fix


def test_a_slow_adapter_names_the_rate_it_sustains_and_the_latency_timer(tmp_path):
    with EmulatedRig.start("so100", tmp_path / "rig", adapter="ftdi") as slow:  # a 16 ms latency timer
        at_100 = arm(slow, fps=100)["arm: bus cycle"]
        at_20 = arm(slow, fps=20)["arm: bus cycle"]  # ~45 Hz sustained: margin for a loaded machine
    assert at_100.verdict == "fail" and "below the 100 Hz asked" in at_100.detail
    assert "held up" not in at_100.detail  # every read waits out the timer: not a busy moment
    assert "--fps" in at_100.fix and "latency timer" in at_100.fix
    assert at_20.verdict == "ok"


def test_an_ftdi_adapter_with_its_default_latency_timer_is_flagged(tmp_path):
    """The sysfs layout of an FTDI adapter (as Linux lays it out), read from a copy."""
    node = tmp_path / "dev" / "ttyUSB0"
    node.parent.mkdir()
    node.touch()
    device = tmp_path / "devices" / "usb1" / "1-1:1.0" / "ttyUSB0"
    device.mkdir(parents=True)
    (tmp_path / "drivers" / "ftdi_sio").mkdir(parents=True)
    (device / "driver").symlink_to(tmp_path / "drivers" / "ftdi_sio")
    (device / "latency_timer").write_text("16\n")
    tty = tmp_path / "sys" / "class" / "tty" / "ttyUSB0"
    tty.mkdir(parents=True)
    (tty / "device").symlink_to(device)
    check = adapter_check("arm", str(node), tmp_path / "sys")
    assert check.verdict == "warn" and "ftdi_sio, latency timer 16 ms" in check.detail
    assert "echo 1 | sudo tee" in check.fix and "latency_timer" in check.fix
    (device / "latency_timer").write_text("1\n")
    assert adapter_check("arm", str(node), tmp_path / "sys").verdict == "ok"


def test_python_and_jetson_cases(tmp_path):
    assert python_check((3, 12, 3)).verdict == "ok"
    assert python_check((3, 10, 12)).verdict == "fail"
    release = tmp_path / "nv_tegra_release"
    assert jetson_check(release).verdict == "skip"
    release.write_text("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n")
    jp6 = jetson_check(release)
    assert jp6.verdict == "fail" and "JetPack 6" in jp6.detail and "JetPack 7.2" in jp6.fix
    release.write_text("# R39 (release), REVISION: 2.0, GCID: 1, BOARD: generic, EABI: aarch64\n")
    assert jetson_check(release).verdict == "ok"


def test_a_loop_rate_drift_run_would_refuse_is_refused_here_too(tmp_path, capsys):
    for fps in ("0", "1001", "thirty"):
        with pytest.raises(SystemExit) as exited:
            main(["--robot", "so100", "--port", str(tmp_path / "ttyACM0"), "--fps", fps])
        assert exited.value.code == 2 and "a whole number of Hz from 1 to 1000" in capsys.readouterr().err
