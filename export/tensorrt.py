"""TensorRT engines built from a bundle on the target machine, cached by what makes them valid,
and the runner that executes them.

An engine is tied to the ONNX graph, the TensorRT version, the GPU model and compute capability,
and the precision; the cache file name holds all four, so a copied cache, an upgraded TensorRT or
a different GPU never loads a stale engine. Engines and the shared timing cache are written to a
temporary file and renamed (a crash mid-build leaves no half file).

One code path for TensorRT 10 (JetPack 6) and 11: a *strongly typed* network built from the
bundle's graph of the wanted precision, ``model.onnx`` (FP32) or ``model.fp16.onnx`` (FP16
networks, FP32 normalization and glue; see export/fp16.py). TensorRT 11 removed the FP16 builder
flag and per-layer precision constraints; strong typing from an already mixed-precision graph is
what both versions accept, and it keeps the normalization layers in FP32 by construction.

The runner binds every input and output to one device buffer allocated once (torch CUDA tensors:
LeRobot users have torch) and, after a warm-up call, captures ``execute_async_v3`` into a CUDA
graph: a chunk then costs the host→device copies, one graph launch and one device→host copy. If
the capture fails (a plugin or driver that refuses it), plain ``execute_async_v3`` runs and
``cuda_graph`` is False.
"""

import functools
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .manifest import BundleManifest

CACHE_ENV = "DRIFT_ENGINE_CACHE"
TIMING_CACHE_FILE = "timing.cache"
PRECISIONS = ("fp32", "fp16")


class TensorRTError(Exception):
    """TensorRT is missing, there is no GPU, or the build failed: the message says which."""


@dataclass(frozen=True)
class Machine:
    """What an engine is only valid on."""

    tensorrt_version: str
    gpu: str
    compute_capability: tuple[int, int]


def engine_filename(onnx_sha256: str, machine: Machine, precision: str) -> str:
    gpu = re.sub(r"[^a-z0-9]+", "-", machine.gpu.lower()).strip("-")
    major, minor = machine.compute_capability
    return f"{onnx_sha256[:16]}_{gpu}_sm{major}{minor}_trt{machine.tensorrt_version}_{precision}.plan"


def cache_dir() -> Path:
    """``$DRIFT_ENGINE_CACHE``, else ``~/.cache/drift/engines`` (engines are per machine)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "drift" / "engines")


def import_tensorrt():
    """The ``tensorrt`` module and a CUDA device, or a TensorRTError that says what to install."""
    try:
        import tensorrt as trt
    except ImportError as err:
        raise TensorRTError(
            "TensorRT is not installed for this Python (pip install tensorrt, or on a Jetson the "
            f"JetPack python3-libnvinfer package); ONNX Runtime's providers are the other GPU path ({err})."
        ) from None
    import torch

    if not torch.cuda.is_available():
        raise TensorRTError("TensorRT needs an NVIDIA GPU with a working CUDA driver; none is visible here.")
    return trt


def this_machine() -> Machine:
    import torch

    trt = import_tensorrt()
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return Machine(trt.__version__, props.name, (props.major, props.minor))


def engine_path(
    bundle: Path, precision: str, cache: Path | None = None, machine: Machine | None = None
) -> Path:
    """Where the engine of this bundle graph, precision and machine is cached (built or not)."""
    if precision not in PRECISIONS:
        raise TensorRTError(f"TensorRT engines are built in {' or '.join(PRECISIONS)}; got {precision}.")
    manifest = BundleManifest.load(bundle)
    digest = manifest.files[manifest.graph_file(precision)]
    return Path(cache or cache_dir()) / engine_filename(digest, machine or this_machine(), precision)


def ensure_engine(
    bundle: Path,
    precision: str = "fp32",
    cache: Path | None = None,
    machine: Machine | None = None,
    build=None,
) -> Path:
    """Path of the cached engine for this bundle, precision and machine; built first if missing.
    ``build(graph_bytes, engine_path, timing_cache_path)`` defaults to ``build_engine``; it gets the
    sealed graph's bytes as checked against their digest (as ONNX Runtime does, see
    ``export.onnxrt.bundle_session``), so the graph cannot pull in data from outside the bundle."""
    engine = engine_path(bundle, precision, cache, machine)
    if not engine.is_file():
        engine.parent.mkdir(parents=True, exist_ok=True)
        manifest = BundleManifest.load(bundle)
        graph = manifest.read_file(bundle, manifest.graph_file(precision))
        (build or build_engine)(graph, engine, engine.parent / TIMING_CACHE_FILE)
    return engine


def build_engine(graph: bytes, engine_path: Path, timing_cache: Path, workspace_gib: float = 2.0) -> None:
    """Parse the ONNX ``graph`` into a strongly typed network, build it, write engine and timing
    cache atomically. A timing cache from another GPU or TensorRT version is ignored (and replaced)."""
    trt = import_tensorrt()
    logger = _logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(graph):  # the bytes alone: no path, so no external data to follow
        errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
        raise TensorRTError(f"TensorRT could not parse the bundle graph for {engine_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TensorRTError(f"TensorRT could not build {engine_path.name}; its log above says why.")
    _atomic_write(engine_path, bytes(serialized))
    _atomic_write(timing_cache, bytes(config.get_timing_cache().serialize()))


@functools.cache
def _logger(trt):
    """One logger for the process: TensorRT keeps the first one it is given."""
    return trt.Logger(trt.Logger.WARNING)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class EngineRunner:
    def __init__(self, engine_path: Path):
        trt = import_tensorrt()
        import torch

        self._torch = torch
        self.engine = trt.Runtime(_logger(trt)).deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise TensorRTError(f"TensorRT could not load {engine_path} (corrupt?); delete it to rebuild.")
        self._context = self.engine.create_execution_context()
        self._stream = torch.cuda.Stream()
        self.buffers, self.inputs, self.outputs = {}, [], []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            np_dtype = trt.nptype(self.engine.get_tensor_dtype(name))
            dtype = torch.from_numpy(np.empty(0, dtype=np_dtype)).dtype
            self.buffers[name] = torch.empty(
                tuple(self.engine.get_tensor_shape(name)), dtype=dtype, device="cuda"
            )
            self._context.set_tensor_address(name, self.buffers[name].data_ptr())
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs).append(name)
        self._execute()  # TensorRT's lazy initialization must happen before a capture
        self._graph = self._capture()
        self.cuda_graph = self._graph is not None

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(self.buffers[name].shape) for name in self.inputs}

    def _execute(self) -> None:
        if not self._context.execute_async_v3(self._stream.cuda_stream):
            raise TensorRTError("TensorRT execute_async_v3 failed; its log above says why.")

    def _capture(self):
        graph = self._torch.cuda.CUDAGraph()
        try:
            with self._torch.cuda.graph(graph, stream=self._stream):
                self._execute()
        except RuntimeError:
            return None
        return graph

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The first output for ``feeds`` (numpy, the engine's static shapes), as numpy."""
        torch = self._torch
        with torch.cuda.stream(self._stream):
            for name in self.inputs:
                self.buffers[name].copy_(torch.from_numpy(np.ascontiguousarray(feeds[name])))
            if self._graph is not None:
                self._graph.replay()
            else:
                self._execute()
            return self.buffers[self.outputs[0]].cpu().numpy()
