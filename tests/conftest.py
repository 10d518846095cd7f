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
    """(checkpoint, bundle) for the emulated so100 with one 64x48 camera "front" (see benchmarks/emulated_policy.py)."""
    from benchmarks.emulated_policy import policy_bundle, record_teleop_dataset

    base = tmp_path_factory.mktemp("so100_policy")
    root = record_teleop_dataset("so100", base / "drift_so100_teleop", base / "rig")
    return policy_bundle(root, base)


@pytest.fixture(scope="session")
def koch_policy(tmp_path_factory):
    """(checkpoint, bundle) for the emulated koch, like ``so100_policy``."""
    from benchmarks.emulated_policy import policy_bundle, record_teleop_dataset

    base = tmp_path_factory.mktemp("koch_policy")
    root = record_teleop_dataset("koch", base / "drift_koch_teleop", base / "rig")
    return policy_bundle(root, base)
