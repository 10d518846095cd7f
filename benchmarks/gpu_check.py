"""The GPU check (issue 19), for the lent GPU machine: torch alone, no LeRobot, no install.

    python -m benchmarks.gpu_check_prepare --out outputs/gpu_carry     # here, on the CPU (make gpu-carry)
    python benchmarks/gpu_check.py --carry outputs/gpu_carry --out "$OUT/gpu_check.json"   # there

For each prepared policy (small and default U-Net, one and two 96x96 cameras: DriftGraph, the torch
backend's computation, as a ``torch.export`` program) it measures, in one run: p50/p99 per chunk
on the CPU, on CUDA eager, on CUDA replaying a captured CUDA graph, and CUDA eager and graph replay under FP16
autocast, with the FP32-CUDA and FP16 outputs compared to the CPU's against the accelerator gate
(export/parity.py). It also says which ONNX Runtime providers and whether TensorRT are present
there. Without a CUDA GPU it says so, times the CPU only, and exits 0: ``gpu`` is null in the JSON.

Run as a file (not ``-m``): importing the package would import LeRobot, which the GPU machine lacks.
drift/timing.py and export/parity.py are pure numpy and are loaded by path.
"""

import argparse
import gzip
import importlib.util
import io
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, relative: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


timing = _load("drift_timing", "drift/timing.py")
parity = _load("drift_parity", "export/parity.py")


def load_program(carry: Path, spec: dict, seed: int = 0) -> torch.nn.Module:
    """The program with its zeroed weights drawn again, as PyTorch initializes conv/linear layers."""
    program = torch.export.load(io.BytesIO(gzip.decompress((carry / spec["file"]).read_bytes())))
    generator = torch.Generator().manual_seed(seed)
    for key in spec["redrawn"]:
        weight = program.state_dict[key]
        bound = 1.0 / np.sqrt(weight[0].numel())  # 1 / sqrt(fan_in)
        weight.detach().copy_(torch.rand(weight.shape, generator=generator) * 2 * bound - bound)
    return program.module()


def to_device(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module.to(device)`` for an exported program: also the constants it holds as plain tensor
    attributes, and the ``device=`` arguments the export recorded as the CPU."""
    for node in module.graph.nodes:
        where = node.kwargs.get("device")
        if where is not None and torch.device(where).type == "cpu":
            node.kwargs = {**node.kwargs, "device": device}
    module.recompile()
    module.to(device)
    for sub in module.modules():
        for name, value in list(vars(sub).items()):
            if isinstance(value, torch.Tensor):
                setattr(sub, name, value.to(device))
    return module


def inputs_for(spec: dict, seed: int = 1) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    made = []
    for item in spec["inputs"]:
        if item["dtype"] == "uint8":
            made.append(torch.randint(0, 256, item["shape"], dtype=torch.uint8, generator=generator))
        else:
            made.append(torch.randn(item["shape"], generator=generator))
    return tuple(made)


def percentiles(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1e3
    return {"p50_ms": round(float(np.median(ms)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def gate(actual: torch.Tensor, expected: torch.Tensor) -> dict:
    max_abs, cosine = parity.compare(actual.float().cpu().numpy(), expected.numpy())
    figures = parity.ParityFigures(max_abs, cosine)
    return {"max_abs": max_abs, "min_cosine": cosine, "passes": parity.ACCELERATOR_GATE.passes(figures)}


def check_program(carry: Path, spec: dict, calls: int, cpu_calls: int, cuda: bool) -> dict:
    module = load_program(carry, spec)
    inputs = inputs_for(spec)
    row = {k: spec[k] for k in ("size", "cameras", "parameters")}
    with torch.inference_mode():
        reference = module(*inputs)
        row["cpu"] = percentiles(timing.time_calls(lambda: module(*inputs), cpu_calls, warmup=3))
        if not cuda:
            return row
        device = torch.device("cuda")
        module = to_device(module, device)
        on_gpu = tuple(t.to(device) for t in inputs)

        def eager():
            out = module(*on_gpu)
            torch.cuda.synchronize()
            return out

        row["cuda_fp32_parity"] = gate(eager(), reference)
        row["cuda_eager"] = percentiles(timing.time_calls(eager, calls, warmup=10))
        static_out = _captured(module, on_gpu)
        graph = static_out.pop("graph")

        def replay():
            graph.replay()
            torch.cuda.synchronize()

        row["cuda_graph"] = percentiles(timing.time_calls(replay, calls, warmup=10))
        row["cuda_graph_matches_eager"] = bool(torch.equal(static_out["out"], eager()))

        def half():
            with torch.autocast("cuda", dtype=torch.float16):
                return eager()

        row["fp16_parity"] = gate(half(), reference)
        row["cuda_fp16_eager"] = percentiles(timing.time_calls(half, calls, warmup=10))
        with torch.autocast("cuda", dtype=torch.float16):
            half_graph = _captured(module, on_gpu)["graph"]

        def half_replay():
            half_graph.replay()
            torch.cuda.synchronize()

        row["cuda_graph_fp16"] = percentiles(timing.time_calls(half_replay, calls, warmup=10))
    return row


def _captured(module, inputs) -> dict:
    """A CUDA graph of one call (PyTorch's recipe: warm up on a side stream, then capture)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            module(*inputs)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = module(*inputs)
    graph.replay()
    torch.cuda.synchronize()
    return {"graph": graph, "out": out}


def environment() -> dict:
    env = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cuda_build": torch.version.cuda,
        "gpu": None,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env["gpu"] = {
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1),
        }
        env["cudnn"] = torch.backends.cudnn.version()
        env["tf32_convolutions"] = torch.backends.cudnn.allow_tf32
    try:
        import onnxruntime as ort

        env["onnxruntime"] = {"version": ort.__version__, "providers": ort.get_available_providers()}
    except ImportError:
        env["onnxruntime"] = None
    env["tensorrt"] = importlib.util.find_spec("tensorrt") is not None
    env["not_measured"] = [
        "ONNX Runtime's CUDA/TensorRT providers: "
        + (
            "present but no ONNX graph is carried"
            if "CUDAExecutionProvider" in (env["onnxruntime"] or {}).get("providers", [])
            else "this onnxruntime is the CPU build; onnxruntime-gpu with its CUDA libraries is several hundred MiB, over the 64 MiB a call may carry"
        ),
        "native TensorRT: "
        + (
            "importable, but no ONNX graph is carried"
            if env["tensorrt"]
            else "not installed there; its wheels (libnvinfer) are far over the 64 MiB carry"
        ),
    ]
    return env


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--carry", type=Path, default=ROOT / "outputs" / "gpu_carry")
    default_out = (
        Path(os.environ["OUT"]) / "gpu_check.json"
        if os.environ.get("OUT")
        else ROOT / "outputs" / "gpu_check.json"
    )
    p.add_argument("--out", type=Path, default=default_out)
    p.add_argument("--calls", type=int, default=200, help="timed calls per GPU figure")
    p.add_argument("--cpu-calls", type=int, default=30, help="timed calls per CPU figure")
    args = p.parse_args(argv)
    manifest_file = args.carry / "programs.json"
    if not manifest_file.exists():
        print(
            f"gpu-check: no {manifest_file}; run python -m benchmarks.gpu_check_prepare --out {args.carry} first",
            file=sys.stderr,
        )
        return 2
    manifest = json.loads(manifest_file.read_text())
    if manifest["torch"].split("+")[0] != torch.__version__.split("+")[0]:
        print(
            f"gpu-check: the programs were exported by torch {manifest['torch']}, this is {torch.__version__}; prepare them with this version",
            file=sys.stderr,
        )
        return 2
    env = environment()
    cuda = env["gpu"] is not None
    if not cuda:
        print(
            f"gpu-check: no CUDA GPU here (torch {torch.__version__}, CUDA build {torch.version.cuda}); GPU figures not measured, CPU only"
        )
    rows = []
    for spec in manifest["programs"]:
        rows.append(check_program(args.carry, spec, args.calls, args.cpu_calls, cuda))
        print(json.dumps(rows[-1]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": env, "programs": rows}, indent=1))
    print(f"gpu-check: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
