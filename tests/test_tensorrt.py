"""TensorRT engines: the cache key and cache behaviour (everywhere), clear refusals where TensorRT or
a GPU is missing, and — on a machine with both — engines built, gated and run for real."""

import importlib.util
import os

import numpy as np
import pytest

from lerobot_policy_drift.export.cli import main as export_cli
from lerobot_policy_drift.export.tensorrt import (
    Machine,
    TensorRTError,
    _atomic_write,
    engine_filename,
    ensure_engine,
)
from lerobot_policy_drift.runtime.backends import BackendError, make_backend

H100 = Machine("10.13.0", "NVIDIA H100 80GB HBM3", (9, 0))


def _gpu_and_tensorrt() -> str | None:
    """Why the real-engine tests cannot run here, or None when they can."""
    if importlib.util.find_spec("tensorrt") is None:
        return "the tensorrt package is not installed"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU is visible"
    return None


NO_GPU = _gpu_and_tensorrt()


def test_an_engine_is_keyed_by_graph_tensorrt_gpu_and_precision():
    base = engine_filename("ab" * 32, H100, "fp16")
    assert base == "abababababababab_nvidia-h100-80gb-hbm3_sm90_trt10.13.0_fp16.plan"
    others = {
        engine_filename("cd" * 32, H100, "fp16"),
        engine_filename("ab" * 32, Machine("11.4.0", H100.gpu, (9, 0)), "fp16"),
        engine_filename("ab" * 32, Machine("10.13.0", "Orin (nvgpu)", (8, 7)), "fp16"),
        engine_filename("ab" * 32, H100, "fp32"),
    }
    assert base not in others and len(others) == 4
    assert "/" not in engine_filename("ab" * 32, Machine("10.3", "Orin (nvgpu)/x", (8, 7)), "fp32")


def test_the_cache_builds_once_per_key(so100_policy, tmp_path):
    _, bundle = so100_policy
    built = []

    def build(graph, engine, timing_cache):
        built.append((graph, engine.name, timing_cache.name))
        engine.write_bytes(b"plan")

    first = ensure_engine(bundle, "fp32", tmp_path, H100, build)
    assert ensure_engine(bundle, "fp32", tmp_path, H100, build) == first
    assert built == [((bundle / "model.onnx").read_bytes(), first.name, "timing.cache")]  # the sealed bytes
    other = ensure_engine(bundle, "fp32", tmp_path, Machine("10.3.0", "Orin", (8, 7)), build)
    assert other != first and len(built) == 2
    with pytest.raises(TensorRTError, match="fp32 or fp16; got int8"):
        ensure_engine(bundle, "int8", tmp_path, H100, build)


def test_a_failed_write_leaves_no_temporary_and_the_old_file_intact(tmp_path):
    with pytest.raises(TypeError):
        _atomic_write(tmp_path / "engine.plan", object())  # fails inside the write
    assert list(tmp_path.iterdir()) == []
    _atomic_write(tmp_path / "engine.plan", b"plan")
    with pytest.raises(TypeError):
        _atomic_write(tmp_path / "engine.plan", object())
    assert [p.name for p in tmp_path.iterdir()] == ["engine.plan"]
    assert (tmp_path / "engine.plan").read_bytes() == b"plan"


@pytest.mark.skipif(NO_GPU is None, reason="this machine has TensorRT and a GPU: the real tests run instead")
def test_without_tensorrt_or_a_gpu_the_backend_and_the_export_say_why(so100_policy, tmp_path, capsys):
    ckpt, bundle = so100_policy
    with pytest.raises(BackendError, match="TensorRT is not installed|needs an NVIDIA GPU"):
        make_backend("tensorrt", bundle, None)
    out = tmp_path / "bundle"
    assert export_cli(["--ckpt", str(ckpt), "--out", str(out), "--tensorrt"]) == 2
    assert "TensorRT" in capsys.readouterr().err and not out.exists()


@pytest.mark.skipif(NO_GPU is not None, reason=f"needs TensorRT on a GPU: {NO_GPU}")
def test_engines_are_built_gated_and_run_on_this_gpu(so100_policy, tmp_path, capsys, monkeypatch):
    from lerobot_policy_drift.export.bundle import export_bundle
    from lerobot_policy_drift.export.manifest import GOLDEN_FILE

    monkeypatch.setenv("DRIFT_ENGINE_CACHE", str(tmp_path / "engines"))
    ckpt, _ = so100_policy
    bundle = tmp_path / "bundle"
    export_bundle(ckpt, bundle, fp16=True, n_random=4, n_realistic=8)
    assert export_cli(["--verify", str(bundle), "--backend", "tensorrt-engine"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "tensorrt-engine-fp32" in out and "tensorrt-engine-fp16" in out
    assert len(os.listdir(tmp_path / "engines")) == 3  # two engines and the shared timing cache
    golden = np.load(bundle / GOLDEN_FILE)
    feeds = {k.removeprefix("input."): golden[k][0] for k in golden.files if k.startswith("input.")}
    ort = make_backend("ort", bundle, None)
    for precision in ("fp32", "fp16"):
        engine = make_backend("tensorrt", bundle, None, precision=precision)
        assert engine.name == f"tensorrt-{precision}-cudagraph"
        first = engine.infer(feeds)
        np.testing.assert_array_equal(engine.infer(feeds), first)  # graph replays are repeatable
        np.testing.assert_allclose(first, ort.infer(feeds), atol=1.0)  # robot units; gated in normalized


def test_onnx_runtime_tensorrt_provider_caches_engines_and_falls_back_to_cuda(tmp_path, monkeypatch):
    """Without an engine cache ORT's TensorRT provider rebuilds at every session start."""
    from lerobot_policy_drift.export.onnxrt import provider_list

    monkeypatch.setenv("DRIFT_ENGINE_CACHE", str(tmp_path))
    (name, options), fallback = provider_list("tensorrt")
    assert name == "TensorrtExecutionProvider" and fallback == "CUDAExecutionProvider"
    assert options["trt_engine_cache_enable"] and options["trt_timing_cache_enable"]
    assert (
        options["trt_engine_cache_path"] == str(tmp_path / "onnxruntime")
        and (tmp_path / "onnxruntime").is_dir()
    )
    assert provider_list("cuda") == ["CUDAExecutionProvider"] and provider_list("cpu") == [
        "CPUExecutionProvider"
    ]
