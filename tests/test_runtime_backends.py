"""drift-run's backends compute one contract: the torch backend (a checkpoint not yet exported)
matches the bundle in ONNX Runtime, a LeRobot Diffusion Policy checkpoint runs as LeRobot's own
``select_action`` would run it (ACT and VQ-BeT: tests/test_runtime_baselines.py)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lerobot_policy_drift.demos.emulated_policy import config_variant, untrained_checkpoint
from lerobot_policy_drift.export.manifest import GOLDEN_FILE, MODEL_FILE, BundleError
from lerobot_policy_drift.runtime.backends import BackendError, OrtBackend, make_backend


def _golden_feeds(bundle: Path, index: int) -> dict[str, np.ndarray]:
    golden = np.load(bundle / GOLDEN_FILE)
    return {k.removeprefix("input."): golden[k][index] for k in golden.files if k.startswith("input.")}


def test_torch_backend_computes_what_the_bundle_computes(so100_policy):
    ckpt, bundle = so100_policy
    ort_backend = make_backend("ort", bundle, None)
    torch_backend = make_backend("torch", bundle, ckpt)  # checked against the bundle's contract
    assert torch_backend.contract == ort_backend.contract
    for i in range(3):
        feeds = _golden_feeds(bundle, i)
        np.testing.assert_allclose(torch_backend.infer(feeds), ort_backend.infer(feeds), atol=1e-3)


def test_a_diffusion_checkpoint_runs_as_lerobot_runs_it(so100_policy, tmp_path):
    """Same observation, same noise: the backend's chunk is the n_action_steps actions LeRobot's
    online path (``select_action`` through the saved processors) executes."""
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
    from lerobot.policies.factory import make_pre_post_processors

    ckpt, bundle = so100_policy
    dataset = json.loads((ckpt / "train_config.json").read_text())["dataset"]
    dp = untrained_checkpoint(
        Path(dataset["root"]),
        dataset["repo_id"],
        tmp_path / "diffusion",
        policy_type="diffusion",
        crop_shape=None,
        pretrained_backbone_weights=None,  # offline: DP's default would download ImageNet weights
        noise_scheduler_type="DDIM",  # deterministic given the noise (DDPM draws fresh noise each step)
        num_inference_steps=3,
        horizon=16,
        n_action_steps=8,
    )
    backend = make_backend("torch", None, dp)
    assert backend.contract.cameras == {"front": (48, 64)} and backend.contract.n_action_steps == 8

    feeds = _golden_feeds(bundle, 0)
    for key in ("observation.state", "observation.images.front"):  # one frame, repeated: a fresh queue
        feeds[key] = np.repeat(feeds[key][:, -1:], 2, axis=1)
    chunk = backend.infer(feeds)

    policy = DiffusionPolicy.from_pretrained(dp).eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(dp))
    frame = {
        "observation.state": torch.from_numpy(feeds["observation.state"][:, -1]),
        "observation.images.front": torch.from_numpy(feeds["observation.images.front"][:, -1]).float() / 255,
    }
    noise = torch.from_numpy(feeds["noise"])
    expected = [post(policy.select_action(pre(frame), noise=noise))[0].numpy() for _ in range(8)]
    np.testing.assert_allclose(chunk, np.stack(expected), atol=1e-4)

    # The closed-loop benchmark's DP-10 row: same weights, another sampler, read from config.json.
    variant = make_backend(
        "torch",
        None,
        config_variant(dp, tmp_path / "ddim5", noise_scheduler_type="DDIM", num_inference_steps=5),
    )
    sampler = variant._graph._ckpt.policy.diffusion
    assert sampler.num_inference_steps == 5 and type(sampler.noise_scheduler).__name__ == "DDIMScheduler"
    assert not np.allclose(variant.infer(feeds), chunk)  # 5 steps instead of 3: another sample


def test_precision_selects_a_gated_graph_of_the_bundle(so100_policy, tmp_path):
    from lerobot_policy_drift.export.bundle import export_bundle

    ckpt, bundle = so100_policy
    with pytest.raises(BundleError, match="has no fp16 graph.*--fp16"):
        make_backend("ort", bundle, None, precision="fp16")
    with pytest.raises(BackendError, match="--backend torch runs in fp32"):
        make_backend("torch", None, ckpt, precision="fp16")
    both = tmp_path / "bundle_fp16"
    export_bundle(ckpt, both, fp16=True, n_random=4, n_realistic=4)
    fp32, fp16 = (make_backend("ort", both, None, precision=p) for p in ("fp32", "fp16"))
    assert (fp32.name, fp16.name) == ("onnxruntime-cpu-fp32", "onnxruntime-cpu-fp16")
    feeds = _golden_feeds(both, 0)
    a, b = fp32.infer(feeds), fp16.infer(feeds)
    assert not np.array_equal(a, b)
    np.testing.assert_allclose(b, a, atol=0.5)  # robot units (degrees); the gate is in normalized units


def test_auto_provider_takes_the_best_that_loads_and_says_why(exported):
    """On this CPU machine TensorRT, CUDA and CoreML are not there: auto runs the CPU graph, and the
    backend says which providers it passed over and why."""
    import onnxruntime as ort

    backend = OrtBackend(exported, "auto")
    if {"TensorrtExecutionProvider", "CUDAExecutionProvider"} & set(ort.get_available_providers()):
        pytest.skip("a GPU provider is available here; this test describes a CPU-only machine")
    assert backend.name == "onnxruntime-cpu-fp32"
    assert backend.choice.startswith(
        "auto: cpu (tensorrt: ONNX Runtime here has no TensorrtExecutionProvider"
    )
    assert "coreml: ONNX Runtime here has no CoreMLExecutionProvider" in backend.choice
    assert OrtBackend(exported, "cpu").choice == "cpu as asked"
    with pytest.raises(BackendError, match="no CoreMLExecutionProvider .* macOS builds"):
        OrtBackend(exported, "coreml")


def test_auto_provider_passes_over_one_that_fails_the_golden_set_gate(exported, monkeypatch):
    """A provider that loads but computes something else (here: the same graph
    changed to add 1 to every action, standing in for a GPU kernel gone wrong) is not used; the
    next one is."""
    import onnx

    from lerobot_policy_drift.export import onnxrt

    model = onnx.load(exported / MODEL_FILE)
    output = model.graph.output[0].name
    for node in model.graph.node:  # the graph's own output now feeds one more Add: action + 1
        node.output[:] = [f"{name}.off" if name == output else name for name in node.output]
    one = onnx.numpy_helper.from_array(np.ones(1, np.float32), "one")
    model.graph.initializer.append(one)
    model.graph.node.append(onnx.helper.make_node("Add", [f"{output}.off", "one"], [output]))
    wrong = onnxrt.create_session(model.SerializeToString())
    real = onnxrt.bundle_session

    def sessions(bundle, manifest, precision, provider="cpu", threads=None):
        return wrong if provider == "cuda" else real(bundle, manifest, precision, provider, threads)

    monkeypatch.setattr(onnxrt, "bundle_session", sessions)
    backend = OrtBackend(exported, "auto")
    assert backend.name == "onnxruntime-cpu-fp32"
    assert "cuda: failed the golden-set gate (max |Δ|" in backend.choice


def test_torch_device_choice_and_its_refusals(so100_policy):
    ckpt, bundle = so100_policy
    assert make_backend("torch", bundle, ckpt, device="cpu").name == "torch-cpu"
    with pytest.raises(BackendError, match="--device cuda is for --backend torch"):
        make_backend("ort", bundle, None, device="cuda")
    if not torch.cuda.is_available():
        with pytest.raises(
            BackendError, match="sees no CUDA GPU here; check nvidia-smi .* or use --device cpu"
        ):
            make_backend("torch", bundle, ckpt, device="cuda")
    if not torch.backends.mps.is_available():
        with pytest.raises(BackendError, match="--device mps: torch sees no Apple-silicon GPU"):
            make_backend("torch", bundle, ckpt, device="mps")


def test_drift_run_refuses_an_unknown_device_in_one_line(so100_policy, capsys):
    from lerobot_policy_drift.runtime.cli import main

    _, bundle = so100_policy
    with pytest.raises(SystemExit) as exited:
        main(["--robot", "so100", "--emulate", "--bundle", str(bundle), "--device", "tpu"])
    assert exited.value.code == 2 and "invalid choice: 'tpu'" in capsys.readouterr().err
