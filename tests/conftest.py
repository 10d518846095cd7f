"""Shared test set-up: offline, deterministic, CPU-only."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def so100_policy(tmp_path_factory):
    """(checkpoint, bundle) for the emulated so100 with one 64x48 camera "front" (see demos/emulated_policy.py)."""
    from lerobot_policy_drift.demos.emulated_policy import policy_bundle, record_teleop_dataset

    base = tmp_path_factory.mktemp("so100_policy")
    root = record_teleop_dataset("so100", base / "drift_so100_teleop", base / "rig")
    return policy_bundle(root, base)


@pytest.fixture(scope="session")
def so100_prefix_policy(so100_policy, tmp_path_factory):
    """(checkpoint, bundle) of an untrained prefix-conditioned policy over ``so100_policy``'s recording."""
    import json
    from pathlib import Path

    from lerobot_policy_drift.demos.emulated_policy import policy_bundle

    ckpt, _ = so100_policy
    root = Path(json.loads((ckpt / "train_config.json").read_text())["dataset"]["root"])
    return policy_bundle(root, tmp_path_factory.mktemp("so100_prefix"), prefix_conditioning=True)


@pytest.fixture(scope="session")
def koch_policy(tmp_path_factory):
    """(checkpoint, bundle) for the emulated koch, like ``so100_policy``."""
    from lerobot_policy_drift.demos.emulated_policy import policy_bundle, record_teleop_dataset

    base = tmp_path_factory.mktemp("koch_policy")
    root = record_teleop_dataset("koch", base / "drift_koch_teleop", base / "rig")
    return policy_bundle(root, base)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """(checkpoint, dataset root): a small untrained DriftPolicy saved the way lerobot-train saves one."""
    from lerobot_policy_drift.demos.emulated_policy import untrained_checkpoint
    from lerobot_policy_drift.demos.toy_tasks import write_lerobot_dataset

    base = tmp_path_factory.mktemp("export")
    root = base / "dataset"
    write_lerobot_dataset("bimodal", root, n_episodes=3, image_size=32)
    ckpt = untrained_checkpoint(root, "local/drift_bimodal", base / "pretrained_model", crop_shape=(28, 28))
    return ckpt, root


@pytest.fixture(scope="session")
def exported(checkpoint, tmp_path_factory):
    """A bundle exported from ``checkpoint`` (read-only for tests: copy it before editing)."""
    from lerobot_policy_drift.export.bundle import export_bundle

    ckpt, root = checkpoint
    out = tmp_path_factory.mktemp("bundles") / "bundle"
    export_bundle(ckpt, out, dataset_root=root)
    return out
