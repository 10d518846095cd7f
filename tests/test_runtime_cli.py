"""drift-run and drift-profile as a user runs them: exit codes, Ctrl-C, the report on disk."""

import json
import signal
import subprocess
import sys
import time

import pytest

from lerobot_policy_drift.runtime.cli import main, profile_main
from tests.emulator_helpers import assert_rate_held, wait_until


def drift_run(*args, **popen):
    return subprocess.Popen(
        [sys.executable, "-m", "lerobot_policy_drift.runtime.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_bad_configuration_exits_2_with_one_clear_line(so100_policy, tmp_path, capsys):
    _, bundle = so100_policy
    assert main(["--robot", "so100", "--emulate", "--bundle", str(bundle), "--fps", "0"]) == 2
    err = capsys.readouterr().err
    assert (
        "fps: Input should be greater than or equal to 1" in err
        and "Arm: nothing connected, nothing moved." in err
    )
    assert main(["--robot", "so100", "--emulate", "--bundle", str(bundle), "--inference-floor-ms", "-5"]) == 2
    assert "inference_floor_ms: Input should be greater than or equal to 0" in capsys.readouterr().err
    assert main(["--robot", "so100", "--port", "/dev/null", "--bundle", str(tmp_path)]) == 2
    assert "is not a Drift bundle" in capsys.readouterr().err
    assert main(["--robot", "so100", "--emulate", "--bundle", str(bundle), "--camera", "front"]) == 2
    assert "expected NAME=SPEC" in capsys.readouterr().err
    assert main(["--robot", "so100", "--emulate", "--bundle", str(bundle), "--camera", "front=opencv:0"]) == 2
    assert "cameras are created by emulate" in capsys.readouterr().err


def test_profile_writes_the_report_format(so100_policy, tmp_path):
    _, bundle = so100_policy
    assert profile_main(["--bundle", str(bundle), "--calls", "20", "--report", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["inference_ms"]["count"] == 20 and report["backend"] == "onnxruntime-cpu-fp32"


def test_profile_parts_charges_the_graph_time_to_encoder_unet_and_glue(so100_policy, tmp_path, capsys):
    _, bundle = so100_policy
    args = ["--bundle", str(bundle), "--calls", "10", "--report", str(tmp_path), "--parts"]
    assert profile_main(args) == 0
    parts = json.loads((tmp_path / "parts.json").read_text())
    assert parts["calls"] == 10 and parts["model"].endswith("model.onnx")
    assert parts["parts_ms"]["vision encoder"] > 0 and parts["parts_ms"]["U-Net"] > 0
    assert parts["kernels_ms"] == pytest.approx(sum(parts["parts_ms"].values()), rel=0.5)  # medians
    assert parts["ops_ms"]["Conv"] > 0
    assert 0 < parts["kernels_ms"] < parts["wall_ms"] and parts["plain_wall_ms"] > 0
    assert "vision encoder" in capsys.readouterr().err
    assert profile_main(["--bundle", str(bundle), "--backend", "torch", "--parts"]) == 2
    assert "--parts splits ONNX Runtime's CPU kernel times" in capsys.readouterr().err
    assert profile_main(["--bundle", str(bundle), "--ort-provider", "cuda", "--parts"]) == 2


@pytest.mark.slow
def test_emulated_session_ctrl_c_stops_cleanly(so100_policy, tmp_path):
    """The README's main command, ended by Ctrl-C: summary printed, report written, no traceback."""
    _, bundle = so100_policy
    proc = drift_run("--robot", "so100", "--emulate", "--bundle", str(bundle), "--report", str(tmp_path))
    wait_until(lambda: (tmp_path / "emulator" / "rig.log").exists(), timeout_s=120, poll_s=0.2)
    time.sleep(4)  # let the session run a few seconds; the assertions below are on its report
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err and "stop: stop (SIGINT)" in err and "torque off" in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ticks"] > 30
    assert_rate_held(report)
    # the servos' side, on the emulator's clock: one goal write per tick, the first and the hold aside
    assert (
        abs(report["actuation_writes"] - report["ticks"]) <= 2 and report["actuation_jitter_ms"]["p50"] < 33
    )
    assert "arm" in report["bus_cycle"] and "sustains" in report["bus_cycle"]["arm"]
    assert not (tmp_path / "emulator" / "follower").exists()  # the emulated port is gone with the session


@pytest.mark.slow
def test_second_ctrl_c_forces_exit(so100_policy, tmp_path):
    _, bundle = so100_policy
    proc = drift_run("--robot", "so100", "--emulate", "--bundle", str(bundle), "--report", str(tmp_path))
    wait_until(lambda: (tmp_path / "emulator" / "rig.log").exists(), timeout_s=120, poll_s=0.2)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode in (0, 130)  # 130: forced before the graceful stop finished
    wait_until(lambda: not (tmp_path / "emulator" / "follower").exists(), timeout_s=10)


@pytest.mark.slow
def test_ctrl_c_during_start_up_cancels_it_with_one_line(so100_policy, tmp_path):
    """Ctrl-C as soon as the emulated arm starts: nothing more is started, the emulator is stopped
    again, exit 130 with one line (it used to connect, warm up and run first)."""
    _, bundle = so100_policy
    proc = drift_run("--robot", "so100", "--emulate", "--bundle", str(bundle), "--report", str(tmp_path))
    wait_until(lambda: (tmp_path / "emulator" / "rig.log").exists(), timeout_s=120, poll_s=0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("drift-run: start-up cancelled by SIGINT; arm: ") and "Traceback" not in err
    assert not (tmp_path / "report.json").exists()  # the loop never ran
    wait_until(lambda: not (tmp_path / "emulator" / "follower").exists(), timeout_s=10)
