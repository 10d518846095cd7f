"""ONNX Runtime sessions tuned for batch-1 latency on a small CPU.

Settings (see BENCHMARKS.md for the measurements): all graph optimizations, sequential
execution with one inter-op thread, and spinning off by default, because the control loop
shares the cores with inference and spinning threads steal them from it.
"""

import importlib.metadata as md
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .manifest import BundleError, BundleManifest

LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def create_session(
    model: Path | bytes,
    threads: int | None = None,
    spinning: bool = False,
    level: str = "all",
    providers: list | None = None,
    profile_prefix: str | None = None,
) -> ort.InferenceSession:
    """``model``: a file, or a graph's bytes (then it cannot refer to external data files).
    ``profile_prefix``: turn on ONNX Runtime's profiler, writing to ``<prefix>_<date>.json``
    (export/graph_profile.py reads it)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = LEVELS[level]
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    # Errors only: on the CPU an FP16 graph logs one "no CPU kernel to constant-fold" warning per
    # node; a provider that fell back to the CPU is caught by provider_session, not by the log.
    opts.log_severity_level = 3
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, opts, providers=providers or ["CPUExecutionProvider"])


ORT_BUILDS = ("onnxruntime", "onnxruntime-gpu")
ORT_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "coreml": "CoreMLExecutionProvider",  # Apple silicon: in onnxruntime's macOS builds
}


class ProviderError(Exception):
    """The execution provider asked for cannot run here; the message says why and what to do."""


def provider_session(model: Path | bytes, provider: str, threads: int | None = None) -> ort.InferenceSession:
    """A session on exactly ``provider`` (cpu / cuda / tensorrt / coreml). ONNX Runtime silently falls back
    to the CPU when a GPU provider fails to load (missing CUDA/cuDNN/TensorRT libraries); that
    fallback is refused here, since timings and parity would describe another backend."""
    wanted = ORT_PROVIDERS[provider]
    available = ort.get_available_providers()
    if wanted not in available:
        builds = installed_ort_builds()
        if "onnxruntime" in builds and len(builds) > 1:
            raise ProviderError(
                f"ONNX Runtime here has no {wanted}: {' and '.join(builds)} are both installed and "
                "write the same onnxruntime package, so the CPU build's files shadow the GPU one. "
                f"Keep one: pip uninstall -y {' '.join(builds)} && pip install onnxruntime-gpu"
            )
        if provider == "coreml":
            raise ProviderError(
                f"ONNX Runtime here has no {wanted} (available: {', '.join(available)}); it ships in "
                "onnxruntime's macOS builds for Apple silicon. Elsewhere use the cpu provider."
            )
        raise ProviderError(
            f"ONNX Runtime here has no {wanted} (available: {', '.join(available)}); install "
            "onnxruntime-gpu built for this machine's CUDA/TensorRT in place of onnxruntime "
            "(pip uninstall -y onnxruntime && pip install onnxruntime-gpu), or use the cpu provider."
        )
    session = create_session(model, threads=threads, providers=provider_list(provider))
    if session.get_providers()[0] != wanted:
        raise ProviderError(
            f"ONNX Runtime could not start {wanted} (it fell back to {session.get_providers()[0]}); "
            "check that the CUDA / cuDNN / TensorRT libraries it needs are on the library path."
        )
    return session


_ORT_DTYPES = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int64)": "int64"}


def bundle_session(
    bundle: Path, manifest: BundleManifest, precision: str, provider: str = "cpu", threads: int | None = None
) -> ort.InferenceSession:
    """A session on the bundle's sealed ``precision`` graph. ONNX Runtime gets the very bytes whose
    digest was checked (so nothing can change between check and load, and the graph cannot pull in
    external data from outside the bundle), and the graph's own inputs and outputs must be the
    manifest's names, dtypes and shapes. Anything else is a ``BundleError``, before any arm moves."""
    name = manifest.graph_file(precision)
    graph = manifest.read_file(bundle, name)
    try:
        session = provider_session(graph, provider, threads)
    except ProviderError:
        raise
    except Exception as err:  # ONNX Runtime's own types (Fail, InvalidGraph, …): a graph it cannot load
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BundleError(
            f"{Path(bundle) / name}: ONNX Runtime cannot load this graph ({first[:300]}); graphs in a "
            "bundle are self-contained. Re-export the bundle."
        ) from None
    for what, specs, args in (
        ("inputs", manifest.inputs, session.get_inputs()),
        ("outputs", manifest.outputs, session.get_outputs()),
    ):
        got = sorted((a.name, _ORT_DTYPES.get(a.type, a.type), list(a.shape)) for a in args)
        want = sorted((s.name, s.dtype, s.shape) for s in specs)
        if got != want:
            raise BundleError(
                f"{Path(bundle) / name}: the graph's {what} {got} are not the manifest's {want}. Re-export the bundle."
            )
    return session


def installed_ort_builds() -> list[str]:
    """The ONNX Runtime distributions installed here (each one ships the same ``onnxruntime``
    package, so two of them overwrite each other's files; ONNX Runtime supports one at a time)."""
    builds = []
    for name in ORT_BUILDS:
        try:
            md.version(name)
        except md.PackageNotFoundError:
            continue
        builds.append(name)
    return builds


def provider_list(provider: str) -> list:
    """ONNX Runtime's provider list for ``provider``. The TensorRT provider caches its engines and
    timing cache next to drift-export's own (``export.tensorrt.cache_dir()/onnxruntime``; without
    it every session start rebuilds for minutes) and hands the nodes TensorRT cannot run to CUDA,
    not to the CPU."""
    from .tensorrt import cache_dir

    wanted = ORT_PROVIDERS[provider]
    if provider != "tensorrt":
        return [wanted]
    cache = cache_dir() / "onnxruntime"
    cache.mkdir(parents=True, exist_ok=True)
    options = {
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": True,
    }
    return [(wanted, options), ORT_PROVIDERS["cuda"]]


def run(session: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The single output of a bundle graph for one feed dict."""
    return session.run(None, feeds)[0]
