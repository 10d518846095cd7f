"""drift-run with a prefix-conditioned bundle on the emulated SO-100: every request carries the
plan's remaining actions, and each new chunk's first command is the old plan's (no cross-fade)."""

import json
from pathlib import Path

import pytest

from lerobot_policy_drift.demos.emulated_policy import untrained_checkpoint
from lerobot_policy_drift.export.bundle import export_bundle
from lerobot_policy_drift.robots.emulator import EmulatedRig
from lerobot_policy_drift.robots.rig import CameraPlan
from lerobot_policy_drift.runtime.config import RunConfig
from lerobot_policy_drift.runtime.runner import Runner

CAMERA = CameraPlan(name="front", width=64, height=48, fps=30)


@pytest.fixture(scope="module")
def prefix_bundle(so100_policy, tmp_path_factory):
    """An untrained prefix-conditioned policy over the so100 test recording, exported."""
    ckpt, _ = so100_policy
    root = Path(json.loads((ckpt / "train_config.json").read_text())["dataset"]["root"])
    base = tmp_path_factory.mktemp("so100_prefix")
    prefixed = untrained_checkpoint(
        root, f"local/{root.name}", base / "pretrained_model", prefix_conditioning=True
    )
    export_bundle(prefixed, base / "bundle", dataset_root=root, n_random=4, n_realistic=4)
    return base / "bundle"


def test_chunks_continue_the_plan_in_progress(prefix_bundle, tmp_path):
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
