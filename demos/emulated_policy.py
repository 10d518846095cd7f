"""A policy bundle for an emulated arm, for runtime tests and timing benchmarks: teleop demos
recorded from the emulated arm, an untrained DriftPolicy over those features (its statistics from
the recording), exported. Its actions are not meant to do anything useful; its shapes, rates and
inference cost are those of a real bundle for that arm."""

import json
import shutil
from pathlib import Path

import torch
from lerobot.configs.types import FeatureType
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.policies.factory import get_policy_class, make_policy_config, make_pre_post_processors
from lerobot.robots.utils import make_robot_from_config
from lerobot.teleoperators.utils import make_teleoperator_from_config
from lerobot.utils.feature_utils import dataset_to_policy_features

import lerobot_policy_drift  # noqa: F401  (registers the "drift" policy type with LeRobot's factory)
from lerobot_policy_drift.drift.video_backend import video_backend
from lerobot_policy_drift.export.bundle import export_bundle
from lerobot_policy_drift.robots.emulator import EmulatedRig
from lerobot_policy_drift.robots.leader_scripts import sway_within
from lerobot_policy_drift.robots.rig import CameraPlan
from lerobot_policy_drift.runtime.clock import TickClock
from lerobot_policy_drift.runtime.recording import EpisodeRecorder

CAMERA = CameraPlan(name="front", width=64, height=48, fps=30)


def record_teleop_dataset(
    arm: str, root: Path, run_dir: Path, episodes: int = 2, ticks: int = 45, fps: int = 30, camera=CAMERA
) -> Path:
    """Demonstrations by a scripted hand on the emulated leader, recorded with EpisodeRecorder."""
    with EmulatedRig.start(arm, run_dir, leader=True, cameras=[camera]) as rig:
        rig.set_leader_script(sway_within(rig.plan.leader.calibration, share=0.3, period_s=1.5))
        robot = make_robot_from_config(rig.follower_config())
        leader = make_teleoperator_from_config(rig.leader_config())
        robot.connect()
        leader.connect()
        recorder = EpisodeRecorder(root, f"local/{root.name}", fps, robot)
        try:
            clock = TickClock(fps)  # drift-run's own fixed-rate clock
            for _ in range(episodes):
                for _ in range(ticks):
                    clock.wait()
                    obs = robot.get_observation()
                    action = robot.send_action(leader.get_action())
                    recorder.add(obs, action)
                recorder.end_episode()
            recorder.finalize()
        finally:
            leader.disconnect()
            robot.disconnect()
    return root


SMALL = {  # small U-Nets for the policies that have one; other types are sized by the caller
    "drift": {"down_dims": (16, 32), "spatial_softmax_num_keypoints": 8},
    "diffusion": {"down_dims": (16, 32), "spatial_softmax_num_keypoints": 8},
}


def untrained_checkpoint(
    dataset_root: Path, repo_id: str, ckpt: Path, policy_type: str = "drift", **config
) -> Path:
    """An untrained small policy (DriftPolicy, or e.g. LeRobot's ``diffusion``) over the dataset's
    features, saved as lerobot-train saves one: weights, config, processors with the dataset's
    statistics, and the dataset it names in ``train_config.json`` (the part the loaders read).
    Seeded: the same weights every time."""
    torch.manual_seed(0)
    meta = LeRobotDataset(repo_id, root=dataset_root, video_backend=video_backend()).meta
    feats = dataset_to_policy_features(meta.features)
    cfg = make_policy_config(
        policy_type,
        input_features={k: f for k, f in feats.items() if f.type is not FeatureType.ACTION},
        output_features={k: f for k, f in feats.items() if f.type is FeatureType.ACTION},
        **{**SMALL.get(policy_type, {}), "device": "cpu", **config},
    )
    get_policy_class(policy_type)(cfg).save_pretrained(ckpt)
    pre, post = make_pre_post_processors(cfg, dataset_stats=meta.stats)
    pre.save_pretrained(ckpt)
    post.save_pretrained(ckpt)
    dataset = {"repo_id": repo_id, "root": str(dataset_root)}
    (ckpt / "train_config.json").write_text(json.dumps({"dataset": dataset}))
    return ckpt


def policy_bundle(dataset_root: Path, out: Path, **config) -> tuple[Path, Path]:
    """(checkpoint, bundle) of an untrained DriftPolicy over the dataset's features (``config``:
    DriftConfig fields, e.g. ``prefix_conditioning=True``)."""
    ckpt = untrained_checkpoint(
        dataset_root, f"local/{dataset_root.name}", out / "pretrained_model", **config
    )
    bundle = out / "bundle"
    export_bundle(ckpt, bundle, dataset_root=dataset_root, n_random=4, n_realistic=4)
    return ckpt, bundle


def config_variant(ckpt: Path, out: Path, **fields) -> Path:
    """The same weights run differently: a checkpoint folder whose config.json has ``fields``
    changed, e.g. DP sampled by another scheduler / step count (training is scheduler-independent),
    or ACT with temporal ensembling (``temporal_ensemble_coeff``, ``n_action_steps=1``)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for item in ckpt.iterdir():
        if item.name != "config.json":
            (out / item.name).symlink_to(item.resolve())
    config = json.loads((ckpt / "config.json").read_text())
    config.update(fields)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return out
