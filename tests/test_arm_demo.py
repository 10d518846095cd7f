"""The README's main command, shortened: every artifact of the chain is produced and valid.

Whether the tiny policy succeeds is not asserted (a few demos, a few training steps); that the
chain closes is: dataset, LeRobot checkpoint, parity-gated bundle, drift-run report and summary.
"""

import fcntl
import json
import os
import re
import subprocess
import sys

import pytest
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from lerobot_policy_drift.demos.arm import BATCH_SIZE, DEMO_ARGS, REPO_ID, main
from lerobot_policy_drift.demos.folders import claim_folder, empty_folder
from lerobot_policy_drift.demos.train import STREAMING_ARGS, loader_workers, train_policy
from lerobot_policy_drift.export.manifest import BundleManifest
from lerobot_policy_drift.robots.tasks import TASKS
from tests.emulator_helpers import ctrl_c, group_gone, wait_until

SHORT = ["--episodes", "3", "--steps", "10", "--eval-episodes", "2", "--episode-s", "1"]
ONE_STAGE = ("--policy.vision_backbone_stages=1",)  # after DEMO_ARGS: the last of a key wins


@pytest.mark.slow
@pytest.mark.parametrize("task", ["two-targets", "one-target"])
def test_short_chain_produces_every_artifact(tmp_path, task):
    out = tmp_path / "demo"
    main(["--out", str(out), *SHORT, "--task", task])
    dataset = LeRobotDataset(REPO_ID, root=out / "dataset")
    assert dataset.meta.total_episodes == 3 and "observation.images.front" in dataset.meta.features
    ckpt = out / "train/checkpoints/last/pretrained_model"
    assert (ckpt / "model.safetensors").is_file()
    trained = json.loads((ckpt / "train_config.json").read_text())
    assert trained["dataset"]["streaming"] and trained["num_workers"] == 1  # the faster data path (§7.3)
    policy = trained["policy"]
    assert (policy["vision_backbone_stages"], policy["n_obs_steps"]) == (2, 2)  # the recipe's (§7.12)
    manifest = BundleManifest.load(out / "bundle")
    assert manifest.parity[0].passed and manifest.camera_order == ["front"] and manifest.fps == 10
    report = json.loads((out / "run/report/report.json").read_text())
    assert {"ticks", "missed_ticks", "jitter_ms", "stages", "e2e_latency_ms", "interventions"} <= set(report)
    moves = [(t["from"], t["to"]) for t in report["transitions"]]
    assert moves[:3] == [("start", "teleop"), ("teleop", "auto"), ("auto", "handover")]
    # each of the 2 engagements holds while its first chunk is computed: a wait, not an underrun
    assert report["events"]["awaiting_first_chunk"] >= 2
    assert (out / "run/report/latency.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == task and summary["episodes"] == 2 and sum(summary["outcomes"].values()) == 2
    assert 0 <= summary["between"] <= summary["outcomes"]["miss"] and len(summary["tip_gaps"]) == 2
    if task == "one-target":
        assert summary["between"] == 0
    assert dataset.meta.tasks.index.tolist() == [TASKS[task].instruction]


@pytest.mark.slow
def test_rerun_refuses_another_task_or_budget_and_changes_nothing(tmp_path, capsys):
    """Reusing artifacts is safe: a dataset of another task or size, or a checkpoint trained on another
    budget or with other settings, is refused in one line before anything is written."""
    out = tmp_path / "demo"
    main(["--out", str(out), *SHORT])
    before = sorted(p.relative_to(out) for p in (out / "dataset").rglob("*"))
    with pytest.raises(SystemExit, match="holds demonstrations of .*not of the one-target task"):
        main(["--out", str(out), *SHORT, "--task", "one-target"])
    with pytest.raises(SystemExit, match="holds only 3 of 4 demonstrations .*; nothing was changed"):
        main(["--out", str(out), "--episodes", "4", *SHORT[2:]])
    with pytest.raises(SystemExit, match="holds 3 demonstrations, not 2; nothing was changed"):
        main(["--out", str(out), "--episodes", "2", *SHORT[2:]])
    with pytest.raises(SystemExit, match="for 10 steps, not on .* for 20"):
        main(["--out", str(out), *SHORT[:2], "--steps", "20", *SHORT[4:]])
    assert sorted(p.relative_to(out) for p in (out / "dataset").rglob("*")) == before
    with pytest.raises(
        SystemExit, match=r"with other settings \(policy.vision_backbone_stages=1, it has 2\)"
    ):
        train_policy("drift", out / "dataset", REPO_ID, out / "train", 10, BATCH_SIZE, *DEMO_ARGS, *ONE_STAGE)
    capsys.readouterr()
    ckpt = train_policy("drift", out / "dataset", REPO_ID, out / "train", 10, BATCH_SIZE, *DEMO_ARGS)
    assert ckpt.is_dir() and "train: reusing" in capsys.readouterr().out  # the same budget and settings


@pytest.mark.slow
def test_a_ctrl_c_while_recording_ends_in_one_line_and_a_rerun_names_the_unfinished_recording(tmp_path):
    """A terminal's Ctrl-C reaches the demo and its emulated arms together (one process group): the
    demo says in one line how far it got, no traceback, no process left; a re-run refuses the
    unfinished dataset, nothing changed."""
    out = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "lerobot_policy_drift.demos.arm", "--out", str(out), "--episodes", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, as a terminal's foreground job: the test's is spared
    )
    for line in demo.stdout:
        if line.startswith("record: episode 1/20"):
            break
    else:  # the demo ended before its first demonstration: say how, not only that the Ctrl-C missed
        _, stderr = demo.communicate(timeout=60)  # reads both pipes: a full stderr cannot block it
        pytest.fail(f"the demo ended (status {demo.returncode}) before recording: {stderr[-2000:]}")
    _, stderr = ctrl_c(demo)
    assert re.search(
        r"record: stopped \(Ctrl-C\) after \d+ of 20 demonstrations; the emulated arms are stopped", stderr
    )
    wait_until(lambda: group_gone(demo.pid), timeout_s=10)  # the rig's processes are gone too
    before = sorted(p.relative_to(out) for p in (out / "dataset").rglob("*"))
    with pytest.raises(SystemExit, match=r"holds only \d+ of 20 demonstrations \(a recording stopped early"):
        main(["--out", str(out), "--episodes", "20"])
    assert sorted(p.relative_to(out) for p in (out / "dataset").rglob("*")) == before


def test_streaming_gets_a_loader_worker_and_map_style_keeps_its_count():
    """LeRobot shards a streaming dataset over the loader workers: with 0 it would read nothing."""
    assert loader_workers(("--policy.horizon=16", *STREAMING_ARGS), 0) == 1
    assert loader_workers(STREAMING_ARGS, 2) == 2
    assert loader_workers(("--policy.horizon=16",), 0) == 0


def test_a_second_demo_on_the_same_folder_is_refused_and_fresh_keeps_the_claim(tmp_path):
    """While one demo holds OUT, another (with --fresh too) is refused before it deletes, records or
    trains anything; the holder's own --fresh empties OUT but keeps its lock, so the claim holds."""
    out = tmp_path / "demo"
    (out / "dataset").mkdir(parents=True)
    (out / "summary.json").write_text("{}")
    holder_fd = os.open(out / ".arm_demo.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a demo running on OUT
    try:
        with pytest.raises(
            SystemExit, match=r"in use by process \d+ .*one run per folder. Wait for that demo"
        ):
            main(["--out", str(out), *SHORT, "--fresh"])
    finally:
        os.close(holder_fd)
    assert sorted(p.name for p in out.iterdir()) == [".arm_demo.lock", "dataset", "summary.json"]
    lock = claim_folder(out, "arm_demo", "")  # that demo ended: this process holds OUT now
    empty_folder(out, keep=lock)
    assert [p.name for p in out.iterdir()] == [".arm_demo.lock"]


@pytest.mark.slow
def test_dart_demonstrations_record_the_operator_while_the_follower_is_sent_off_and_back(tmp_path):
    """``command_noise``: the same layouts and operator as without it (the recorded actions agree),
    the follower displaced on arrival (the recorded states do not) and back on the goal by the
    end of the hold; a dataset is reused only with the noise it was recorded with."""
    import numpy as np

    from lerobot_policy_drift.demos.arm import FPS, MOVE_S, perturbed, record

    def frames(noise: float) -> tuple[np.ndarray, np.ndarray]:
        root = tmp_path / f"noise{noise}"
        record(root, 2, tmp_path / f"rig{noise}", seed=0, command_noise=noise)
        data = LeRobotDataset(REPO_ID, root=root).hf_dataset
        return np.stack(data["action"]), np.stack(data["observation.state"])

    (clean_action, clean_state), (dart_action, dart_state) = frames(0.0), frames(0.2)
    pitch = [1, 2, 3]  # shoulder_lift, elbow_flex, wrist_flex (degrees)
    arrival, end_of_first = int(MOVE_S * FPS), 24  # frames of the first episode (25 each)
    assert np.abs(dart_action - clean_action)[:, pitch].max() < 2.0  # timing jitter only
    assert np.abs(dart_state[arrival] - clean_state[arrival])[pitch].max() > 3.0
    assert np.abs(dart_state[end_of_first] - clean_state[end_of_first])[pitch].max() < 1.5
    with pytest.raises(SystemExit, match="recorded with command noise 0.2, not 0.0"):
        record(tmp_path / "noise0.2", 2, tmp_path / "rig", seed=0)  # reused only as it was recorded
    record(tmp_path / "noise0.0", 2, tmp_path / "rig", seed=0)  # recorded without: reused
    with pytest.raises(SystemExit, match="a standard deviation in radians, not -0.1"):
        record(tmp_path / "never", 2, tmp_path / "rig", seed=0, command_noise=-0.1)
    assert perturbed({"elbow_flex.pos": 10.0}, None, 1.0) == {"elbow_flex.pos": 10.0}
    sent = perturbed({"elbow_flex.pos": 10.0, "gripper.pos": 5.0}, {"elbow_flex": 0.1}, MOVE_S)
    assert sent == pytest.approx({"elbow_flex.pos": 10.0 + np.degrees(0.1), "gripper.pos": 5.0})


@pytest.mark.slow
def test_a_refusal_inside_drift_run_ends_the_demo_in_one_line(tmp_path):
    """A refusal inside drift-run's thread (here: no bundle; in CI once: buses too slow for 30 Hz)
    ends the demo with drift-run's own line and the arm's state, not a missing report later."""
    from lerobot_policy_drift.demos.arm import evaluate

    (tmp_path / "bundle").mkdir()
    with pytest.raises(
        SystemExit, match=r"drift-run refused to start: .*not a Drift bundle.* Arm: nothing connected"
    ):
        evaluate(tmp_path / "run", 1, 0, 1.0, bundle=tmp_path / "bundle")
