"""A prefix-conditioned checkpoint exports a graph that takes the committed actions (robot units),
gated against LeRobot's RTC call; prefix-free bundles keep their contract."""

import json

import numpy as np
import pytest

from lerobot_policy_drift.demos.emulated_policy import untrained_checkpoint
from lerobot_policy_drift.export.bundle import export_bundle
from lerobot_policy_drift.export.checkpoint import load_checkpoint
from lerobot_policy_drift.export.cli import main as cli
from lerobot_policy_drift.export.harness import reference_actions
from lerobot_policy_drift.export.manifest import MODEL_FILE, BundleManifest
from lerobot_policy_drift.export.onnxrt import create_session, run
from lerobot_policy_drift.runtime.backends import OrtBackend


@pytest.fixture(scope="module")
def prefixed(checkpoint, tmp_path_factory):
    """(checkpoint, dataset root, bundle) of an untrained prefix-conditioned policy (P = 3)."""
    _, root = checkpoint
    base = tmp_path_factory.mktemp("prefixed")
    ckpt = untrained_checkpoint(
        root, "local/drift_bimodal", base / "pretrained_model", prefix_conditioning=True, max_prefix_steps=3
    )
    bundle = base / "bundle"
    export_bundle(ckpt, bundle, dataset_root=root, n_random=8, n_realistic=8)
    return ckpt, root, bundle


def _feed(rng, d: int, prefix: np.ndarray) -> dict:
    return {
        "observation.state": rng.uniform(-0.9, 0.9, (1, 2, 2)).astype(np.float32),
        "observation.images.top": rng.integers(0, 256, (1, 2, 3, 32, 32), dtype=np.uint8),
        "noise": rng.standard_normal((1, 16, 2)).astype(np.float32),
        "action.prefix": prefix[None].astype(np.float32),
        "action.prefix_length": np.array([d], np.int64),
    }


def test_the_bundle_takes_the_prefix_and_passes_its_gate(prefixed):
    manifest = BundleManifest.load(prefixed[2])
    assert manifest.contract_version == 2 and manifest.max_prefix_steps == 3
    specs = {s.name: (s.dtype, s.shape) for s in manifest.inputs}
    assert specs["action.prefix"] == ("float32", [1, 3, 2])
    assert specs["action.prefix_length"] == ("int64", [1])
    assert all(report.passed for report in manifest.parity)
    assert cli(["--verify", str(prefixed[2])]) == 0


@pytest.mark.parametrize("d", [0, 1, 3])
def test_the_graph_returns_the_committed_actions_first_as_the_rtc_call_does(prefixed, d):
    ckpt_path, root, bundle = prefixed
    rng = np.random.default_rng(d)
    prefix = rng.uniform(-0.4, 0.4, (3, 2))  # robot units, inside the recorded range
    feed = _feed(rng, d, prefix)
    got = run(create_session(bundle / MODEL_FILE), feed)
    np.testing.assert_allclose(got[0, :d], prefix[:d], atol=1e-4)
    expected = reference_actions(load_checkpoint(ckpt_path, root), feed)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_drift_run_backend_reads_the_prefix_from_the_bundle(prefixed):
    backend = OrtBackend(prefixed[2])
    assert backend.contract.max_prefix_steps == 3
    rng = np.random.default_rng(0)
    prefix = rng.uniform(-0.4, 0.4, (3, 2))
    chunk = backend.infer(_feed(rng, 2, prefix))
    np.testing.assert_allclose(chunk[:2], prefix[:2], atol=1e-4)


def test_a_contract_version_1_bundle_still_loads(exported, tmp_path):
    """Bundles written before the prefix input: same manifest, version 1 (re-sealed as it was)."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(exported, old)
    manifest = BundleManifest.load(old)
    assert manifest.max_prefix_steps is None and "action.prefix" not in {s.name for s in manifest.inputs}
    data = json.loads((old / "manifest.json").read_text())
    data["contract_version"] = 1
    data.pop("max_prefix_steps")
    BundleManifest.model_validate(data).write(old)
    assert BundleManifest.load(old).contract_version == 1
    assert OrtBackend(old).contract.max_prefix_steps == 0
    data["max_prefix_steps"] = 3  # a version 1 manifest cannot declare a prefix
    with pytest.raises(ValueError, match="contract_version 2"):
        BundleManifest.model_validate(data)
