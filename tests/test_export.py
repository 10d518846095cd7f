"""drift-export: the bundle contract, the parity gate (including a broken export being refused),
digest checks, --verify, and clear errors for bad checkpoints."""

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from lerobot_policy_drift.demos.emulated_policy import untrained_checkpoint
from lerobot_policy_drift.demos.toy_tasks import write_lerobot_dataset
from lerobot_policy_drift.export import bundle as bundle_module
from lerobot_policy_drift.export import harness as harness_module
from lerobot_policy_drift.export.bundle import export_bundle
from lerobot_policy_drift.export.checkpoint import ExportError, load_checkpoint
from lerobot_policy_drift.export.cli import main as cli
from lerobot_policy_drift.export.graph import DriftGraph
from lerobot_policy_drift.export.harness import reference_actions
from lerobot_policy_drift.export.manifest import FP16_MODEL_FILE, MODEL_FILE, BundleError, BundleManifest
from lerobot_policy_drift.export.onnxrt import ORT_PROVIDERS, create_session, run
from lerobot_policy_drift.export.parity import Gate


def test_bundle_follows_the_graph_contract(exported):
    manifest = BundleManifest.load(exported)
    assert [s.name for s in manifest.inputs] == ["observation.state", "observation.images.top", "noise"]
    assert manifest.input("observation.images.top").dtype == "uint8"
    assert manifest.input("observation.images.top").shape == [1, 2, 3, 32, 32]
    assert manifest.input("noise").shape == [1, 16, 2]
    assert manifest.outputs[0].shape == [1, 8, 2]
    assert manifest.action_names == ["x", "y"] and manifest.camera_order == ["top"]
    assert manifest.fps == 10 and manifest.n_action_steps == 8
    assert manifest.normalization["action"].mode == "MIN_MAX"
    report = manifest.parity[0]
    assert report.passed and report.bitwise_repeatable
    assert report.n_random >= 16 and report.n_realistic >= 16
    assert report.max_abs_normalized <= 1e-4 and report.min_cosine >= 0.99999
    assert set(manifest.files) == {"model.onnx", "golden.npz"}


def test_onnx_graph_matches_the_policy_through_lerobot_processors(checkpoint, exported):
    """A fresh realistic-looking input, not one the gate saw: raw units in, raw units out."""
    ckpt = load_checkpoint(*checkpoint)
    session = create_session(exported / MODEL_FILE)
    rng = np.random.default_rng(7)
    feed = {
        "observation.state": rng.uniform(-0.9, 0.9, (1, 2, 2)).astype(np.float32),
        "observation.images.top": rng.integers(0, 256, (1, 2, 3, 32, 32), dtype=np.uint8),
        "noise": rng.standard_normal((1, 16, 2)).astype(np.float32),
    }
    expected = reference_actions(ckpt, feed)
    np.testing.assert_allclose(run(session, feed), expected, atol=1e-4)


def test_verify_passes_and_a_modified_file_is_refused(exported, tmp_path):
    assert cli(["--verify", str(exported)]) == 0
    copy = tmp_path / "bundle"
    shutil.copytree(exported, copy)
    with open(copy / MODEL_FILE, "r+b") as f:
        f.seek(-10, 2)
        f.write(b"\x00" * 10)
    with pytest.raises(BundleError, match="does not match its sha256"):
        BundleManifest.load(copy)
    assert cli(["--verify", str(copy)]) == 2


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_verify_on_a_gpu_provider_runs_there_or_says_why_not(exported, provider, capsys):
    """On a machine whose onnxruntime has the provider this is the real GPU check (accelerator
    gate); elsewhere it must refuse clearly instead of silently verifying on the CPU."""
    import onnxruntime as ort

    code = cli(["--verify", str(exported), "--backend", provider])
    out = capsys.readouterr()
    if ORT_PROVIDERS[provider] in ort.get_available_providers():
        assert code == 0 and f"PASS: {exported} on onnxruntime-{provider}-fp32" in out.out
    else:
        assert code == 2 and f"has no {ORT_PROVIDERS[provider]}" in out.err


def test_a_broken_export_is_refused_and_nothing_is_written(checkpoint, tmp_path, monkeypatch):
    class Broken(DriftGraph):
        def forward(self, *inputs):
            return super().forward(*inputs) + 1e-3  # small, but far outside the 1e-4 gate

    monkeypatch.setattr(bundle_module, "DriftGraph", Broken)
    out = tmp_path / "bundle"
    with pytest.raises(ExportError, match="parity gate failed"):
        export_bundle(checkpoint[0], out, dataset_root=checkpoint[1], n_random=2, n_realistic=2)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no half-written temporary folder either


def test_existing_bundle_is_not_overwritten_without_force(checkpoint, exported, capsys):
    assert cli(["--ckpt", str(checkpoint[0]), "--out", str(exported)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.fixture
def no_export_work(monkeypatch):
    """Fails the test if the export starts its work (a refusal must come first and cost nothing)."""

    def refuse(*_, **__):
        raise AssertionError("the export started before its output location was checked")

    monkeypatch.setattr(bundle_module, "load_checkpoint", refuse)


def test_force_never_deletes_what_is_not_a_bundle(checkpoint, tmp_path, capsys, no_export_work):
    folder = tmp_path / "my_files"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert cli(["--ckpt", str(checkpoint[0]), "--out", str(folder), "--force"]) == 2
    err = capsys.readouterr().err
    assert "replaces only a Drift bundle or an empty folder" in err and "notes.txt" in err
    assert (folder / "notes.txt").read_text() == "mine"
    bundle_plus = tmp_path / "bundle_plus"  # a bundle that also holds a user's file: not ours to delete
    bundle_plus.mkdir()
    for name in ("manifest.json", "model.onnx", "calibration.json"):
        (bundle_plus / name).write_text("{}")
    assert cli(["--ckpt", str(checkpoint[0]), "--out", str(bundle_plus), "--force"]) == 2
    assert (bundle_plus / "calibration.json").exists() and "calibration.json" in capsys.readouterr().err
    file = tmp_path / "a_file"
    file.write_text("keep")
    assert cli(["--ckpt", str(checkpoint[0]), "--out", str(file), "--force"]) == 2
    err = capsys.readouterr().err
    assert "is a file or a link" in err and err.count("\n") == 1 and file.read_text() == "keep"


def test_output_that_cannot_be_written_is_refused_before_the_export(checkpoint, capsys, no_export_work):
    assert cli(["--ckpt", str(checkpoint[0]), "--out", "/proc/drift_bundle"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("drift-export: error: cannot write /proc/drift_bundle") and "Traceback" not in err


def test_force_replaces_a_bundle_and_the_bundle_is_readable_by_others(checkpoint, exported, tmp_path, caplog):
    out = tmp_path / "bundle"
    shutil.copytree(exported, out)
    (out / "model.onnx").write_bytes(b"stale")
    assert (
        cli(
            ["--ckpt", str(checkpoint[0]), "--out", str(out), "--dataset-root", str(checkpoint[1]), "--force"]
        )
        == 0
    )
    BundleManifest.load(out)  # a fresh, sealed bundle replaced the stale one
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask  # not mkdtemp's 0700
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]  # nothing left beside it
    # Reading the dataset chose its decoder itself: no torchcodec load traceback from LeRobot's probe.
    assert not [r for r in caplog.records if "torchcodec" in r.getMessage()]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing_dir", "does not exist"),
        ("a_file", "is a file, not a folder"),
        ("no_config", "has no config.json"),
        ("corrupt_config", "not valid JSON"),
        ("other_policy", "only drift checkpoints are accepted"),
        ("no_weights", "no model.safetensors"),
        ("corrupt_weights", "could not load the checkpoint"),
        ("bad_value", "DriftConfig.num_samples_per_obs"),
    ],
)
def test_bad_checkpoints_get_one_clear_line_and_exit_2(checkpoint, tmp_path, capsys, damage, message):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(checkpoint[0], ckpt)
    config = ckpt / "config.json"
    if damage == "missing_dir":
        shutil.rmtree(ckpt)
    elif damage == "a_file":
        shutil.rmtree(ckpt)
        ckpt.write_text("not a folder")
    elif damage == "no_config":
        config.unlink()
    elif damage == "corrupt_config":
        config.write_text("{not json")
    elif damage == "other_policy":
        config.write_text(json.dumps({**json.loads(config.read_text()), "type": "diffusion"}))
    elif damage == "no_weights":
        (ckpt / "model.safetensors").unlink()
    elif damage == "corrupt_weights":
        (ckpt / "model.safetensors").write_bytes(b"garbage" * 10)
    elif damage == "bad_value":
        config.write_text(json.dumps({**json.loads(config.read_text()), "num_samples_per_obs": 0}))
    code = cli(["--ckpt", str(ckpt), "--out", str(tmp_path / "out"), "--dataset-root", str(checkpoint[1])])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_missing_dataset_metadata_is_explained(checkpoint, tmp_path, capsys):
    code = cli(["--ckpt", str(checkpoint[0]), "--out", str(tmp_path / "b"), "--dataset-root", str(tmp_path)])
    assert code == 2 and "--dataset-root" in capsys.readouterr().err


def test_policy_actions_unchanged_by_export(checkpoint):
    """Exporting must not leave the policy in train mode or alter its weights."""
    ckpt = load_checkpoint(*checkpoint)
    before = {k: v.clone() for k, v in ckpt.policy.state_dict().items()}
    DriftGraph(ckpt)
    assert not ckpt.policy.training
    assert all(torch.equal(before[k], v) for k, v in ckpt.policy.state_dict().items())


def test_int8_graph_outside_its_gate_is_refused(checkpoint, tmp_path, monkeypatch):
    """An INT8 graph outside its gate is refused and nothing is written. The gate is made
    unreachable here so the test does not depend on how well random weights happen to quantize."""
    monkeypatch.setitem(harness_module.GATES, "onnxruntime-cpu-int8", Gate(max_abs=0.0, min_cosine=1.0))
    out = tmp_path / "bundle"
    with pytest.raises(ExportError, match="parity gate failed for onnxruntime-cpu-int8"):
        export_bundle(checkpoint[0], out, dataset_root=checkpoint[1], int8=True, n_random=4, n_realistic=4)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_int8_quantizes_the_encoder_only_and_passes_its_gate(checkpoint, tmp_path):
    import onnx

    from lerobot_policy_drift.export.manifest import INT8_MODEL_FILE

    out = tmp_path / "bundle"
    manifest = export_bundle(
        checkpoint[0], out, dataset_root=checkpoint[1], int8=True, n_random=4, n_realistic=8
    )
    report = next(r for r in manifest.parity if r.model == INT8_MODEL_FILE)
    assert report.passed and 0 < report.max_abs_normalized <= 5e-2
    nodes = onnx.load(str(out / INT8_MODEL_FILE)).graph.node
    quantized = {n.output[0] for n in nodes if n.op_type == "DequantizeLinear"}
    convs = [n for n in nodes if n.op_type == "Conv"]
    int8_convs = {n.name.startswith("/rgb_encoder") for n in convs if n.input[1] in quantized}
    assert int8_convs == {True}  # some encoder convolutions, no U-Net convolution
    assert any(n.name.startswith("/unet/") and n.input[1] not in quantized for n in convs)


def test_int8_of_a_policy_without_cameras_is_refused(tmp_path):
    root = tmp_path / "dataset"
    write_lerobot_dataset("bimodal", root, n_episodes=2)
    ckpt = untrained_checkpoint(root, "local/state_only", tmp_path / "pretrained_model")
    with pytest.raises(ExportError, match="no cameras; drop --int8"):
        export_bundle(ckpt, tmp_path / "bundle", dataset_root=root, int8=True, n_random=2, n_realistic=2)
    assert not (tmp_path / "bundle").exists()


def test_a_constant_action_dimension_is_not_a_parity_difference():
    """A joint that never moved in the data has zero scale: every network output unnormalizes to the
    same command, so its normalized value must not count (it used to, as up to |output| of Δ)."""
    from lerobot_policy_drift.export.parity import to_normalized

    robot = np.array([[5.0, 3.0], [1.0, 3.0]])
    out = to_normalized(robot, offset=np.array([1.0, 3.0]), scale=np.array([2.0, 0.0]))
    assert out.tolist() == [[2.0, 0.0], [0.0, 0.0]]


def test_a_joint_whose_recorded_range_is_rounding_noise_is_constant_too():
    """Measured on the arm demo: a motor the demos never moved has min and max one float32 rounding
    apart (scale 5e-9 around 0.044°), so INT8's 1e-9° differences read as 0.5 normalized."""
    from lerobot_policy_drift.export.parity import to_normalized

    offset, scale = np.array([0.04395604, 10.0]), np.array([5e-9, 1e-3])
    robot = np.array([[0.043956045, 10.002], [0.04395604, 10.0]], dtype=np.float32)
    out = to_normalized(robot, offset=offset, scale=scale)
    assert out[:, 0].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(out[:, 1], [2.0, 0.0], atol=1e-3)  # a real, narrow range still counts


def test_a_nan_or_inf_output_fails_every_gate():
    """max()/min() skip NaN silently: an FP16 graph that overflowed once read as max |Δ| 0, cosine 1."""
    from lerobot_policy_drift.export.parity import GATES, ParityFigures, compare

    expected = np.ones((1, 4, 2))
    for bad in (np.nan, np.inf):
        actual = expected.copy()
        actual[0, 1, 0] = bad
        figures = ParityFigures()
        figures.add(compare(actual, expected), robot_abs=0.0)
        assert figures.max_abs == float("inf") and figures.min_cosine == -1.0
        assert not any(g.passes(figures) for g in GATES.values())


@pytest.fixture(scope="module")
def exported_fp16(checkpoint, tmp_path_factory) -> Path:
    ckpt, root = checkpoint
    out = tmp_path_factory.mktemp("bundles") / "bundle_fp16"
    export_bundle(ckpt, out, dataset_root=root, fp16=True)
    return out


def test_fp16_graph_runs_the_networks_in_half_and_the_contract_in_single_precision(exported_fp16):
    import onnx

    manifest = BundleManifest.load(exported_fp16)
    report = next(r for r in manifest.parity if r.model == FP16_MODEL_FILE)
    assert report.backend == "onnxruntime-cpu-fp16" and report.passed
    assert report.max_abs_normalized <= 1e-2 and report.min_cosine >= 0.999
    assert report.max_abs_normalized > 0  # it really is a different precision
    model = onnx.load(str(exported_fp16 / FP16_MODEL_FILE))
    f32, f16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    assert all(v.type.tensor_type.elem_type != f16 for v in [*model.graph.input, *model.graph.output])
    weights = {t.name: t.data_type for t in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv" and n.name.startswith("/unet/")]
    assert convs and all(weights[n.input[1]] == f16 for n in convs)
    norms = [n for n in model.graph.node if n.op_type == "InstanceNormalization"]
    assert norms and all(weights[n.input[1]] == f32 for n in norms)  # normalization stays FP32
    assert cli(["--verify", str(exported_fp16)]) == 0


def test_fp16_conversion_keeps_constants_of_fp32_glue_in_fp32(tmp_path):
    """LeRobot divides a constant state dimension by 1e-8; rounded to FP16 that is 0, then 0/0."""
    import onnx
    from onnx import TensorProto, helper

    from lerobot_policy_drift.export.fp16 import convert_fp16

    eps = helper.make_tensor("v", TensorProto.FLOAT, [1], [1e-8])
    graph = helper.make_graph(
        [
            helper.make_node("Constant", [], ["eps"], name="/Constant", value=eps),
            helper.make_node("Mul", ["x", "eps"], ["small"], name="/Mul"),
            helper.make_node("Div", ["small", "eps"], ["back"], name="/Div"),
            helper.make_node("Relu", ["back"], ["y"], name="/unet/Relu"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
    )
    src, dst = tmp_path / "m.onnx", tmp_path / "m16.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), src)
    convert_fp16(src, dst)
    x = np.array([0.0, 1.5, -2.0], dtype=np.float32)
    np.testing.assert_allclose(run(create_session(dst), {"x": x}), [0.0, 1.5, 0.0], rtol=1e-3)


def test_a_cpu_build_shadowing_onnxruntime_gpu_is_named_with_its_fix(exported, monkeypatch, capsys):
    """`pip install onnxruntime-gpu` next to the CPU build (which this package depends on) leaves
    both in one folder and the GPU providers missing: the error says so and how to keep one."""
    import importlib.metadata as md

    import onnxruntime as ort

    if ORT_PROVIDERS["cuda"] in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider: nothing is shadowed here")
    real = md.version
    monkeypatch.setattr(md, "version", lambda name: "1.22.0" if name == "onnxruntime-gpu" else real(name))
    assert cli(["--verify", str(exported), "--backend", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "onnxruntime and onnxruntime-gpu are both installed" in err
    assert "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu" in err
