"""drift-run with a prefix-conditioned bundle on the emulated SO-100: every request carries the
plan's remaining actions, and each new chunk's first command is the old plan's (no cross-fade)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lerobot_policy_drift.robots.emulator import EmulatedRig
from lerobot_policy_drift.robots.rig import CameraPlan
from lerobot_policy_drift.runtime.config import RunConfig
from lerobot_policy_drift.runtime.runner import Runner

CAMERA = CameraPlan(name="front", width=64, height=48, fps=30)


def test_chunks_continue_the_plan_in_progress(so100_prefix_policy, tmp_path):
    _, prefix_bundle = so100_prefix_policy
    with EmulatedRig.start("so100", tmp_path / "rig", cameras=[CAMERA]) as rig:
        before = rig.state()
        config = RunConfig.for_rig(
            rig, bundle=prefix_bundle, report_dir=tmp_path / "report", status=False, duration_s=3
        )
        report = Runner(config).run()  # the real 30 Hz clock: chunks arrive when inference allows
        after = rig.state()
    assert report["chunks"] > 5 and report["stop_reason"] == "duration 3 s reached"
    joins = report["join_step"]
    assert joins["count"] >= 3  # every chunk after the first met a plan still running
    assert joins["p50"] <= 1e-3  # and its first command was that plan's own action
    assert any(after[i]["Present_Position"] != before[i]["Present_Position"] for i in before)
    assert report["command_step_near_joins"]["count"] > 0 and report["command_step_elsewhere"]["count"] > 0
    # jerks are counted on policy ticks; here joins come every ~6 ticks, so all are near one
    assert report["command_jerk_near_joins"]["count"] > 0 and "command_jerk_within_chunks" in report


@pytest.mark.slow
def test_lerobot_rollout_rtc_drives_a_prefix_checkpoint(so100_prefix_policy, tmp_path):
    """LeRobot's own RTC engine (``lerobot-rollout --inference.type=rtc``) accepts the checkpoint and
    drives the emulated SO-100 through LeRobot's unmodified driver."""
    ckpt, _ = so100_prefix_policy
    with EmulatedRig.start("so100", tmp_path / "rig", cameras=[CAMERA]) as rig:
        cmd = [
            str(Path(sys.executable).parent / "lerobot-rollout"),
            *rig.robot_cli_args(),
            f"--policy.path={ckpt}",
            "--policy.device=cpu",
            "--strategy.type=base",
            "--inference.type=rtc",
            "--inference.rtc.execution_horizon=8",
            "--fps=30",
            "--duration=6",
        ]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        writes = len(rig.sync_write_times())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RTC inference error" not in result.stderr and "Fatal error in RTC thread" not in result.stderr
    assert writes > 60  # goals reached the servos for most of the 6 s at 30 Hz


def test_best_of_k_bundle_runs_k_candidates_per_call(so100_policy, tmp_path):
    """A bundle exported with --batch 4 is four candidates per call; drift-run keeps one per chunk."""
    from lerobot_policy_drift.export.bundle import export_bundle
    from lerobot_policy_drift.runtime.backends import OrtBackend

    ckpt, _ = so100_policy
    root = Path(json.loads((ckpt / "train_config.json").read_text())["dataset"]["root"])
    bundle = tmp_path / "bundle_k4"
    export_bundle(ckpt, bundle, batch=4, dataset_root=root, n_random=2, n_realistic=2)
    assert OrtBackend(bundle).contract.candidates == 4
    with EmulatedRig.start("so100", tmp_path / "rig", cameras=[CAMERA]) as rig:
        config = RunConfig.for_rig(
            rig, bundle=bundle, report_dir=tmp_path / "report", status=False, duration_s=3
        )
        report = Runner(config).run()
    assert report["chunks"] > 5 and report["stop_reason"] == "duration 3 s reached"
    assert report["join_step"]["count"] >= 3
