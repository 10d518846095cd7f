"""``lerobot-train`` as the demos and benchmarks call it (CPU, offline), reusing a finished run."""

import os
import subprocess
import sys
from pathlib import Path

from lerobot_policy_drift.drift.video_backend import video_backend


def train_policy(
    policy_type: str,
    dataset: Path,
    repo_id: str,
    run_dir: Path,
    steps: int,
    batch_size: int,
    *policy_args: str,
) -> Path:
    """The checkpoint (``pretrained_model/``) of a ``policy_type`` policy trained by LeRobot's own trainer."""
    ckpt = run_dir / "checkpoints" / "last" / "pretrained_model"
    if ckpt.exists():
        print(f"train: reusing {ckpt}")
        return ckpt
    cmd = [
        str(Path(sys.executable).parent / "lerobot-train"),
        f"--policy.type={policy_type}",
        f"--dataset.repo_id={repo_id}",
        f"--dataset.root={dataset}",
        f"--dataset.video_backend={video_backend()}",
        "--policy.device=cpu",
        "--policy.push_to_hub=false",
        *policy_args,
        f"--batch_size={batch_size}",
        f"--steps={steps}",
        f"--save_freq={steps}",
        f"--log_freq={max(1, steps // 10)}",
        "--num_workers=0",
        f"--output_dir={run_dir}",
        "--wandb.enable=false",
    ]
    print("train: " + " ".join(cmd))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    subprocess.run(cmd, check=True, env=env)
    return ckpt
