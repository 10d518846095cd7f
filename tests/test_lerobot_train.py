"""End to end through LeRobot itself: lerobot-train --policy.type=drift on a local dataset, then
LeRobot's own factory loads the checkpoint and acts. Offline (HF_HUB_OFFLINE=1)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lerobot_policy_drift.demos.toy_tasks import write_lerobot_dataset

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
SMALL_POLICY = [
    "--policy.down_dims=[16,32]",
    "--policy.spatial_softmax_num_keypoints=8",
    "--policy.device=cpu",
]


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "bimodal"
    write_lerobot_dataset("bimodal", root, n_episodes=4, image_size=32)
    return root


def _train(dataset_root: Path, out: Path, launcher: list[str] = (), steps: int = 4) -> str:
    cmd = [
        *launcher,
        str(BIN / "lerobot-train"),
        "--policy.type=drift",
        "--dataset.repo_id=local/drift_bimodal",
        f"--dataset.root={dataset_root}",
        *SMALL_POLICY,
        "--batch_size=4",
        f"--steps={steps}",
        "--log_freq=1",
        f"--save_freq={steps}",
        "--num_workers=0",
        f"--output_dir={out}",
        "--wandb.enable=false",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_lerobot_train_then_factory_load_and_act(dataset_root, tmp_path):
    log = _train(dataset_root, tmp_path / "run")
    # The drift diagnostics reach lerobot-train's log line.
    assert "within_group_std" in log and "force_rms_tau0.05" in log
    ckpt = tmp_path / "run" / "checkpoints" / "last" / "pretrained_model"

    from lerobot.configs import PreTrainedConfig
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors
    from lerobot.utils.import_utils import register_third_party_plugins

    # What every LeRobot script does first: discovery by the distribution name lerobot_policy_*.
    register_third_party_plugins()
    cfg = PreTrainedConfig.from_pretrained(ckpt)
    assert cfg.type == "drift"
    policy = get_policy_class(cfg.type).from_pretrained(ckpt).eval()
    pre, post = make_pre_post_processors(cfg, pretrained_path=str(ckpt))

    frame = LeRobotDataset("local/drift_bimodal", root=dataset_root)[0]
    obs = {k: v for k, v in frame.items() if k.startswith("observation")}
    actions = []
    for _ in range(cfg.n_action_steps + 1):
        actions.append(post(policy.select_action(pre(obs))))
    actions = torch.cat(actions)
    assert actions.shape == (cfg.n_action_steps + 1, 2)
    assert torch.isfinite(actions).all()
    # Unnormalized into robot units: the data range is [-1, 1]; an untrained net stays near it.
    assert actions.abs().max() < 5


def test_two_process_accelerate_launch_trains(dataset_root, tmp_path):
    """Scale-out the way LeRobot does it: `accelerate launch` with 2 processes (DDP, gloo on CPU)."""
    launcher = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes=2", "--num_machines=1"]
    launcher += ["--mixed_precision=no", "--dynamo_backend=no"]
    log = _train(dataset_root, tmp_path / "ddp", launcher=launcher, steps=2)
    assert "Effective batch size: 4 x 2 = 8" in log
    assert (tmp_path / "ddp" / "checkpoints" / "last" / "pretrained_model" / "model.safetensors").exists()


def test_recipe_config_file_trains_and_resumes(dataset_root, tmp_path):
    """configs/drift_so100.json works with --config_path, and a run resumes from its checkpoint."""
    recipe = Path(__file__).resolve().parents[1] / "configs" / "drift_so100.json"
    out = tmp_path / "recipe"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    common = dict(capture_output=True, text=True, env=env, timeout=600)
    first = [
        str(BIN / "lerobot-train"),
        f"--config_path={recipe}",
        "--dataset.repo_id=local/drift_bimodal",
        f"--dataset.root={dataset_root}",
        "--policy.crop_shape=[28,28]",  # the recipe's crop is for 240×320 cameras
        *SMALL_POLICY,
        "--batch_size=4",
        "--steps=2",
        "--save_freq=2",
        "--num_workers=0",
        f"--output_dir={out}",
    ]
    proc = subprocess.run(first, **common)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = out / "checkpoints" / "last" / "pretrained_model" / "train_config.json"
    resume = [str(BIN / "lerobot-train"), f"--config_path={saved}", "--resume=true", "--steps=4"]
    proc = subprocess.run(resume, **common)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "checkpoints" / "000004" / "pretrained_model" / "model.safetensors").exists()
