"""The README's main command, shortened: every artifact of the chain is produced and valid.

Whether the tiny policy succeeds is not asserted (a few demos, a few training steps); that the
chain closes is: dataset, LeRobot checkpoint, parity-gated bundle, drift-run report and summary.
"""

import json

import pytest
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from lerobot_policy_drift.demos.arm import REPO_ID, main
from lerobot_policy_drift.export.manifest import BundleManifest


@pytest.mark.slow
def test_short_chain_produces_every_artifact(tmp_path):
    out = tmp_path / "demo"
    main(["--out", str(out), "--episodes", "3", "--steps", "10", "--eval-episodes", "2", "--episode-s", "1"])
    dataset = LeRobotDataset(REPO_ID, root=out / "dataset")
    assert dataset.meta.total_episodes == 3 and "observation.images.front" in dataset.meta.features
    assert (out / "train/checkpoints/last/pretrained_model/model.safetensors").is_file()
    manifest = BundleManifest.load(out / "bundle")
    assert manifest.parity[0].passed and manifest.camera_order == ["front"] and manifest.fps == 10
    report = json.loads((out / "run/report/report.json").read_text())
    assert {"ticks", "missed_ticks", "jitter_ms", "stages", "e2e_latency_ms", "interventions"} <= set(report)
    moves = [(t["from"], t["to"]) for t in report["transitions"]]
    assert moves[:3] == [("start", "teleop"), ("teleop", "auto"), ("auto", "handover")]
    assert (out / "run/report/latency.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 2 and sum(summary["outcomes"].values()) == 2
    assert 0 <= summary["between"] <= summary["outcomes"]["miss"]
