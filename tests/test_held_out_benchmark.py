"""benchmarks/held_out.py: the tip-error split and the offline pass over trained and unseen episodes."""

import math

import numpy as np
import pytest
import torch

from benchmarks.held_out import (
    DISPLACEMENTS,
    displaced,
    joint_angles_of,
    measure,
    split_error,
    summary,
    tip_of,
)
from lerobot_policy_drift.robots.kinematics import LINKS, reach

NAMES = [
    "shoulder_pan.pos",
    "shoulder_lift.pos",
    "elbow_flex.pos",
    "wrist_flex.pos",
    "wrist_roll.pos",
    "gripper.pos",
]


def test_error_splits_into_bias_and_spread():
    goal = np.array([0.3, 0.1])
    around = split_error(goal + np.array([[0.03, 0.0], [-0.03, 0.0]]), goal)
    assert around == pytest.approx({"error": 0.03, "bias": 0.0, "spread": 0.03, "within": 1.0})
    off = split_error(goal + np.array([[0.1, 0.0], [0.1, 0.0]]), goal)
    assert off == pytest.approx({"error": 0.1, "bias": 0.1, "spread": 0.0, "within": 0.0})
    assert split_error(goal + np.array([[0.03, 0.0]]), goal, tolerance=0.02)["within"] == 0.0


def test_an_action_in_degrees_lands_the_tip_where_the_kinematics_put_it():
    assert tip_of(np.zeros(6), NAMES) == pytest.approx((0.0, sum(LINKS)))
    angles = reach(0.35, 0.1)
    action = [
        0.0,
        *(math.degrees(angles[j]) for j in ("shoulder_lift", "elbow_flex", "wrist_flex")),
        0.0,
        50.0,
    ]
    assert tip_of(np.array(action), NAMES) == pytest.approx((0.35, 0.1), abs=1e-9)


def test_measures_trained_and_unseen_episodes_of_a_checkpoint(so100_policy):
    ckpt, _ = so100_policy
    import json
    from pathlib import Path

    root = Path(json.loads((ckpt / "train_config.json").read_text())["dataset"]["root"])
    results = measure(ckpt, root, train_episodes=1, draws=3, offsets=(0, 30))
    assert {split: {t: len(rows) for t, rows in by.items()} for split, by in results.items()} == {
        "trained": {0: 1, 30: 1},
        "unseen": {0: 1, 30: 1},
    }
    for by in results.values():
        for rows in by.values():
            (row,) = rows
            assert row["error"] >= row["bias"] - 1e-12  # the mean distance bounds the mean's distance
            assert 0.0 <= row["within"] <= 1.0 and row["spread"] >= 0.0
    assert summary(results)["unseen"][30]["episodes"] == 1
    with pytest.raises(SystemExit, match="all within --train-episodes"):
        measure(ckpt, root, train_episodes=2, draws=1)


def test_an_act_checkpoint_is_scored_at_the_last_action_it_plays(so100_policy, tmp_path):
    """ACT predicts 16 actions and the runtime plays 8: the tip error is that of the 8th predicted
    action against the 8th recorded one (not the 16th), and its draws coincide (ACT does not sample)."""
    import json
    from pathlib import Path

    from lerobot.datasets.factory import resolve_delta_timestamps
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

    from lerobot_policy_drift.demos.emulated_policy import untrained_checkpoint
    from lerobot_policy_drift.export.checkpoint import load_checkpoint
    from tests.small_policies import SMALL_ACT

    ckpt, _ = so100_policy
    dataset = json.loads((ckpt / "train_config.json").read_text())["dataset"]
    repo, root = dataset["repo_id"], Path(dataset["root"])
    act = untrained_checkpoint(root, repo, tmp_path / "act", policy_type="act", **SMALL_ACT)
    (row,) = measure(act, root, train_episodes=1, draws=2, offsets=(4,))["trained"][4]
    assert row["spread"] == pytest.approx(0.0, abs=1e-6)  # float32 rounding: threads split sums differently

    loaded = load_checkpoint(act, dataset_root=root, policy_types=("act",))
    deltas = resolve_delta_timestamps(loaded.policy.config, LeRobotDatasetMetadata(repo, root=root))
    data = LeRobotDataset(repo, root=root, delta_timestamps=deltas)
    names, item = data.meta.features["action"]["names"], data[4]
    frame = {k: v.unsqueeze(0) for k, v in item.items() if k.startswith("observation.")}
    with torch.no_grad():
        chunk = loaded.postprocessor(loaded.policy.predict_action_chunk(loaded.preprocessor(frame)))[0]
    assert chunk.shape[0] == 16
    goal = tip_of(item["action"][7].numpy(), names)
    assert row["error"] == pytest.approx(math.dist(tip_of(chunk[7].numpy(), names), goal), rel=1e-5)
    assert row["error"] != pytest.approx(math.dist(tip_of(chunk[15].numpy(), names), goal), rel=1e-3)


def test_a_recorded_frame_is_redrawn_from_its_state_and_the_arm_displaced_from_it(so100_policy):
    """``--displace`` redraws the camera from the recorded state (the same picture, up to the
    camera's own timing), then moves the arm; every episode gets every displacement."""
    import json
    from pathlib import Path

    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from lerobot_policy_drift.robots.scene import render

    ckpt, _ = so100_policy
    root = Path(json.loads((ckpt / "train_config.json").read_text())["dataset"]["root"])
    data = LeRobotDataset(f"local/{root.name}", root=root)
    names = data.meta.features["action"]["names"]
    item = data[len(data) - 1]
    recorded = item["observation.images.front"].numpy().transpose(1, 2, 0)
    drawn = render(joint_angles_of(item["observation.state"].numpy(), names), 64, 48) / 255.0
    assert np.abs(drawn - recorded).mean() < 0.03
    results = displaced(ckpt, root, train_episodes=1, draws=2, seed=0)
    assert {split: {d: len(rows) for d, rows in by.items()} for split, by in results.items()} == {
        split: dict.fromkeys(DISPLACEMENTS, 1) for split in ("trained", "unseen")
    }
    for by in results.values():
        for (before, after, within), *_ in by.values():
            assert before > 0 and after >= 0 and 0.0 <= within <= 1.0
