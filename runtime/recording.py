"""Teleoperated phases as LeRobot dataset episodes, so sessions feed training.

Features come from the robot itself through LeRobot's ``hw_to_dataset_features`` (joint names as
the robot reports them, camera frames as images), so a dataset recorded here trains with
``lerobot-train`` exactly like one from ``lerobot-record``.
"""

from pathlib import Path

import numpy as np

from lerobot_policy_drift.drift.video_backend import video_backend


class EpisodeRecorder:
    def __init__(self, root: Path, repo_id: str, fps: int, robot, task: str = "teleoperation"):
        from lerobot.datasets.lerobot_dataset import LeRobotDataset
        from lerobot.utils.feature_utils import hw_to_dataset_features

        features = {
            **hw_to_dataset_features(robot.action_features, "action", use_video=False),
            **hw_to_dataset_features(robot.observation_features, "observation", use_video=False),
        }
        self.features = features
        self.task = task
        self.dataset = LeRobotDataset.create(
            repo_id=repo_id,
            fps=fps,
            features=features,
            root=root,
            use_videos=False,
            video_backend=video_backend(),
        )
        self.frames_in_episode = 0
        self.episodes = 0

    def add(self, observation: dict, action: dict) -> None:
        from lerobot.utils.feature_utils import build_dataset_frame

        frame = {
            **build_dataset_frame(self.features, observation, "observation"),
            **build_dataset_frame(self.features, action, "action"),
            "task": self.task,
        }
        self.dataset.add_frame(frame)
        self.frames_in_episode += 1

    def end_episode(self) -> None:
        """Close the current episode (an empty one is dropped)."""
        if self.frames_in_episode:
            self.dataset.save_episode()
            self.episodes += 1
        self.frames_in_episode = 0

    def finalize(self) -> None:
        self.end_episode()
        self.dataset.finalize()


def as_action(names, values: np.ndarray) -> dict[str, float]:
    return dict(zip(names, np.asarray(values, float).tolist(), strict=True))
