"""The bundle seal: nothing that decides behaviour can change after the export's gate.

Each edit below is one a user or a copy could make; each must be refused with one line before a
session could connect. ``reseal`` plays someone who also rewrites the seal (integrity, not
authenticity): then the manifest's own checks and the graph-against-manifest check must hold.
"""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from lerobot_policy_drift.export.cli import main as export_cli
from lerobot_policy_drift.export.manifest import (
    GOLDEN_FILE,
    MANIFEST,
    MODEL_FILE,
    SEAL_FILE,
    BundleError,
    BundleManifest,
)
from lerobot_policy_drift.runtime.backends import OrtBackend


@pytest.fixture
def bundle(exported, tmp_path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(exported, copy)
    return copy


def edit_manifest(bundle: Path, change) -> None:
    data = json.loads((bundle / MANIFEST).read_text())
    change(data)
    (bundle / MANIFEST).write_text(json.dumps(data, indent=2))


def reseal(bundle: Path, change=lambda data: None) -> None:
    """Edit the manifest, refresh every file digest it lists, and write a matching seal."""

    def refreshed(data):
        change(data)
        for name in data["files"]:
            if (bundle / name).is_file():
                data["files"][name] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()

    edit_manifest(bundle, refreshed)
    digest = hashlib.sha256((bundle / MANIFEST).read_bytes()).hexdigest()
    (bundle / SEAL_FILE).write_text(f"{digest}  {MANIFEST}\n")


def swap_first_actions(data):
    names = data["action_names"]
    names[0], names[1] = names[1], names[0]


def test_the_seal_verifies_with_sha256sum(exported):
    line = (exported / SEAL_FILE).read_text().split()
    assert line == [hashlib.sha256((exported / MANIFEST).read_bytes()).hexdigest(), MANIFEST]
    assert BundleManifest.load(exported).files.keys() == {MODEL_FILE, GOLDEN_FILE}


@pytest.mark.parametrize(
    "change",
    [
        swap_first_actions,  # each output would silently drive the other joint
        lambda d: d.update(fps=d["fps"] * 2),
        lambda d: d["parity"][0].update(model="../../elsewhere.onnx"),
        lambda d: d["normalization"]["action"]["stats"]["max"].__setitem__(0, 1e6),
    ],
    ids=["swapped action names", "fps", "graph pointer", "normalization"],
)
def test_an_edited_manifest_breaks_the_seal(bundle, change, capsys):
    edit_manifest(bundle, change)
    with pytest.raises(BundleError, match="does not match its seal"):
        BundleManifest.load(bundle)
    assert export_cli(["--verify", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_bundle_without_its_seal_is_refused(bundle):
    (bundle / SEAL_FILE).unlink()
    with pytest.raises(BundleError, match="has no seal"):
        BundleManifest.load(bundle)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["parity"][0].update(model="../../elsewhere.onnx"), "the fp32 graph is model.onnx"),
        (lambda d: d["files"].update({"/etc/passwd": "0" * 64}), "not a plain file name"),
        (lambda d: d["files"].update({"../../x": "0" * 64}), "not a plain file name"),
        (lambda d: d["files"].pop(GOLDEN_FILE), "files: expected exactly"),
        (lambda d: d["inputs"][-1]["shape"].__setitem__(1, 99), "inputs: noise"),
        (lambda d: d["outputs"][0]["shape"].__setitem__(2, 3), "outputs: expected one float32 action"),
        (lambda d: d["camera_order"].append("wrist"), "camera_order"),
        (lambda d: d["action_names"].__setitem__(1, d["action_names"][0]), "each name must appear once"),
    ],
    ids=[
        "graph outside",
        "absolute file",
        "relative escape",
        "golden unsealed",
        "noise",
        "output",
        "cameras",
        "dup",
    ],
)
def test_a_resealed_manifest_must_still_agree_with_itself(bundle, change, message):
    reseal(bundle, change)
    with pytest.raises(BundleError, match=message):
        BundleManifest.load(bundle)


def test_the_graph_must_match_the_manifest_it_is_sealed_with(bundle):
    """A re-sealed input shape that the graph does not have: refused before any session starts
    (it used to crash with a traceback after the arm had connected)."""
    reseal(bundle, lambda d: d["inputs"][1]["shape"].__setitem__(3, 64))
    with pytest.raises(BundleError, match="the graph's inputs .* are not the manifest's"):
        OrtBackend(bundle)


def test_a_graph_behind_a_link_is_refused(bundle, tmp_path):
    outside = tmp_path / "outside.onnx"
    shutil.copy(bundle / MODEL_FILE, outside)
    (bundle / MODEL_FILE).unlink()
    (bundle / MODEL_FILE).symlink_to(outside)
    with pytest.raises(BundleError, match="not a regular file"):
        BundleManifest.load(bundle)


def test_a_graph_reaching_for_external_data_is_refused(bundle, tmp_path):
    """A graph whose weights live in a file outside the bundle (ONNX external data): the seal covers
    only the bundle, so ONNX Runtime is handed the sealed bytes alone and the graph cannot load."""
    (tmp_path / "weights.bin").write_bytes(np.ones(4, np.float32).tobytes())
    weight = numpy_helper.from_array(np.ones(4, np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../weights.bin"), ("offset", "0"), ("length", "16")):
        weight.external_data.add(key=key, value=value)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "escape", [x], [y], [weight])
    (bundle / MODEL_FILE).write_bytes(helper.make_model(graph).SerializeToString())
    reseal(bundle)
    manifest = BundleManifest.load(bundle)
    assert onnx.load(bundle / MODEL_FILE, load_external_data=False).graph.initializer[0].data_location == 1
    with pytest.raises(BundleError, match="ONNX Runtime cannot load this graph"):
        OrtBackend(bundle)
    assert manifest.graph_file("fp32") == MODEL_FILE
