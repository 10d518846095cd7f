"""Inference backends behind one small interface: raw observation tensors + noise in, a chunk out.

Every backend computes the same graph contract as a bundle (``export/graph.py``): state in robot
units, uint8 images, N(0, 1) noise → ``[n_action_steps, action_dim]`` actions in robot units. The
runtime therefore needs neither LeRobot's processors nor torch for the ONNX Runtime backend. A
bundle exported with ``--batch K`` (K > 1) holds K candidates per call: the same observation with
K noise draws, returned as ``[K, n_action_steps, action_dim]`` for drift-run to pick the one
closest to the plan in progress (best-of-K, runtime/chunks.py).

- ``ort``: one of the bundle's graphs (``precision`` fp32 / fp16 / int8) in ONNX Runtime (CPU, or
  the CUDA / TensorRT execution providers when onnxruntime-gpu provides them).
- ``torch``: a checkpoint not yet exported, run as the same ``DriftGraph`` the exporter traces;
  a LeRobot ``diffusion``, ``act`` or ``vqbet`` checkpoint runs through its own processors and
  ``predict_action_chunk`` as its ``select_action`` would (``runtime/lerobot_chunk.py``): the
  baselines the benchmarks compare against, on the same runtime.
- ``tensorrt``: a native TensorRT engine built from the bundle on this machine and cached
  (``export/tensorrt.py``), run with fixed device buffers and a CUDA graph
  (``EngineRunner``, same module). Without TensorRT or a GPU it is a clear error.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from lerobot_policy_drift.export.manifest import BundleError, BundleManifest


class BackendError(Exception):
    """A backend that cannot be used here; the message says why and what to do."""


@dataclass(frozen=True)
class PolicyContract:
    """What the policy reads and writes, as the bundle (or checkpoint) declares it."""

    state_names: tuple[str, ...]
    action_names: tuple[str, ...]
    cameras: dict[str, tuple[int, int]]  # name -> (height, width), in graph input order
    n_obs_steps: int
    horizon: int
    n_action_steps: int
    fps: int
    max_prefix_steps: int = 0  # > 0: the graph takes the committed actions (prefix conditioning)
    candidates: int = 1  # chunks per call (the bundle's batch size): > 1 is best-of-K
    ensemble_coeff: float | None = None  # ACT's temporal ensembling: a chunk every step, averaged

    @classmethod
    def from_manifest(cls, m: BundleManifest) -> "PolicyContract":
        cams = {}
        for name in m.camera_order:
            shape = m.input(f"observation.images.{name}").shape  # [B, S, 3, H, W]
            cams[name] = (shape[3], shape[4])
        if any(spec.name == "observation.environment_state" for spec in m.inputs):
            raise BackendError(
                "this bundle needs observation.environment_state, which a robot arm does not provide."
            )
        return cls(
            tuple(m.state_names),
            tuple(m.action_names),
            cams,
            m.n_obs_steps,
            m.horizon,
            m.n_action_steps,
            m.fps,
            m.max_prefix_steps or 0,
            m.batch_size,
        )


class Backend(Protocol):
    name: str
    contract: PolicyContract

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """One chunk ``[n_action_steps, action_dim]`` (robot units) for batch-1 feeds; for a
        bundle of K > 1 candidates, all of them ``[K, n_action_steps, action_dim]``."""


def per_candidate(contract: PolicyContract, out: np.ndarray) -> np.ndarray:
    """A graph's ``[B, n_action_steps, action_dim]`` output as the backend returns it."""
    return out if contract.candidates > 1 else out[0]


AUTO_PROVIDERS = ("tensorrt", "cuda", "coreml", "cpu")  # ``--ort-provider auto`` tries them in this order


class OrtBackend:
    """A bundle graph in ONNX Runtime. ``provider`` ``auto`` takes the first of ``AUTO_PROVIDERS``
    that loads here and, off the CPU, passes the accelerator gate on the bundle's golden set;
    ``choice`` says which ran and why the ones before it did not."""

    def __init__(
        self, bundle: Path, provider: str = "cpu", threads: int | None = None, precision: str = "fp32"
    ):
        from lerobot_policy_drift.export.onnxrt import ProviderError, bundle_session

        manifest = BundleManifest.load(bundle)
        self.contract = PolicyContract.from_manifest(manifest)
        if provider == "auto":
            self.session, provider, self.choice = _auto_session(Path(bundle), manifest, precision, threads)
        else:
            try:
                self.session = bundle_session(Path(bundle), manifest, precision, provider, threads)
            except ProviderError as err:
                raise BackendError(f"{err} (drift-run: --ort-provider)") from err
            self.choice = f"{provider} as asked"
        self.name = f"onnxruntime-{provider}-{precision}"

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return per_candidate(self.contract, self.session.run(None, feeds)[0])


def _auto_session(bundle: Path, manifest: BundleManifest, precision: str, threads: int | None):
    """(session, provider, why) for ``--ort-provider auto``."""
    from lerobot_policy_drift.export.onnxrt import ProviderError, bundle_session, run
    from lerobot_policy_drift.export.parity import ACCELERATOR_GATE
    from lerobot_policy_drift.export.verify import golden_figures

    passed_over = []
    for provider in AUTO_PROVIDERS:
        if provider != "cpu" and precision == "int8":
            passed_over.append(f"{provider}: INT8 graphs are for the CPU")
            continue
        try:
            session = bundle_session(bundle, manifest, precision, provider, threads)
        except ProviderError as err:
            passed_over.append(f"{provider}: {str(err).split(';')[0].split(' (')[0]}")
            continue
        if provider != "cpu":  # the CPU graph was gated at export; another provider is gated here
            figures = golden_figures(bundle, lambda feed, s=session: run(s, feed))
            if not ACCELERATOR_GATE.passes(figures):
                passed_over.append(
                    f"{provider}: failed the golden-set gate (max |Δ| {figures.max_abs:.1e}, "
                    f"cosine {figures.min_cosine:.5f})"
                )
                continue
        why = f"auto: {provider}" + (f" ({'; '.join(passed_over)})" if passed_over else "")
        return session, provider, why
    raise BackendError("--ort-provider auto: no provider could run this graph: " + "; ".join(passed_over))


class TensorRTBackend:
    def __init__(self, bundle: Path, precision: str = "fp32"):
        from lerobot_policy_drift.export.parity import ACCELERATOR_GATE
        from lerobot_policy_drift.export.tensorrt import EngineRunner, TensorRTError, ensure_engine
        from lerobot_policy_drift.export.verify import golden_figures

        manifest = BundleManifest.load(bundle)
        self.contract = PolicyContract.from_manifest(manifest)
        try:
            engine = ensure_engine(bundle, precision)
            self._runner = EngineRunner(engine)
        except (TensorRTError, BundleError) as err:
            raise BackendError(f"{err} (drift-run: --backend tensorrt)") from err
        expected = {spec.name: tuple(spec.shape) for spec in manifest.inputs}
        if self._runner.input_shapes() != expected:
            raise BackendError(f"engine {engine} does not match the bundle's inputs {expected}; delete it.")
        figures = golden_figures(bundle, self._runner.run)  # an engine drives the arm only once gated
        if not ACCELERATOR_GATE.passes(figures):
            raise BackendError(
                f"TensorRT engine {engine} fails the accelerator gate on the bundle's golden set (max |Δ| "
                f"{figures.max_abs:.2e} normalized, cosine {figures.min_cosine:.6f}); use --backend ort."
            )
        self.name = f"tensorrt-{precision}" + ("-cudagraph" if self._runner.cuda_graph else "")

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return per_candidate(self.contract, self._runner.run(feeds))


TORCH_DEVICES = ("cpu", "cuda", "mps")


def torch_device(name: str):
    """``torch.device(name)`` where this torch can use it; otherwise why not and what to do."""
    import torch

    if name not in TORCH_DEVICES:
        raise BackendError(f"--device {name}: expected one of {', '.join(TORCH_DEVICES)}.")
    if name == "cuda" and not torch.cuda.is_available():
        built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise BackendError(
            f"--device cuda: torch {torch.__version__} ({built}) sees no CUDA GPU here; check nvidia-smi "
            "and that this torch matches the driver, or use --device cpu."
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise BackendError(
            "--device mps: torch sees no Apple-silicon GPU here (MPS needs an M-series Mac on macOS 12.3 "
            "or newer and an arm64 Python); use --device cpu."
        )
    return torch.device(name)


class TorchBackend:
    """The checkpoint in eager PyTorch on ``device`` (cpu / cuda / mps); chunks come back to the CPU."""

    def __init__(
        self,
        checkpoint: Path,
        contract: PolicyContract | None = None,
        threads: int | None = None,
        device: str = "cpu",
    ):
        import torch

        from lerobot_policy_drift.export.checkpoint import ExportError, load_checkpoint
        from lerobot_policy_drift.export.graph import NOISE, DriftGraph, input_names, max_prefix_steps
        from lerobot_policy_drift.runtime.lerobot_chunk import (
            SERVED_TYPES,
            LeRobotChunk,
            chunk_steps,
            ensemble_coeff,
            noise_steps,
        )

        self._device = torch_device(device)
        if threads:
            torch.set_num_threads(threads)
        try:
            ckpt = load_checkpoint(checkpoint, policy_types=SERVED_TYPES, device=device)
        except ExportError as err:
            raise BackendError(str(err)) from err
        self._names = input_names(ckpt)
        cfg = ckpt.policy.config
        self._graph = (
            DriftGraph(ckpt).to(self._device)
            if cfg.type == "drift"
            else LeRobotChunk(ckpt, self._names, NOISE)
        )
        self._torch = torch
        cams = {
            k.removeprefix("observation.images."): tuple(f.shape[1:]) for k, f in cfg.image_features.items()
        }
        own = PolicyContract(
            tuple(ckpt.state_names),
            tuple(ckpt.action_names),
            cams,
            cfg.n_obs_steps,
            noise_steps(cfg),
            chunk_steps(cfg),
            ckpt.fps,
            max_prefix_steps(cfg),
            ensemble_coeff=ensemble_coeff(cfg),
        )
        if contract is not None and contract != own:
            raise BackendError(
                f"checkpoint {checkpoint} does not match the bundle's contract ({own} vs {contract})."
            )
        self.contract = own
        self.name = f"torch-{device}" if cfg.type == "drift" else f"torch-{device}-{cfg.type}"

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        with self._torch.inference_mode():
            out = self._graph(*(self._torch.from_numpy(feeds[n]).to(self._device) for n in self._names))
        return out[0].cpu().numpy()


def make_backend(
    kind: str,
    bundle: Path | None,
    policy: Path | None,
    provider: str = "cpu",
    threads: int | None = None,
    precision: str = "fp32",
    device: str = "cpu",
) -> Backend:
    if kind != "torch" and device != "cpu":
        raise BackendError(
            f"--device {device} is for --backend torch; ONNX Runtime chooses its device with --ort-provider "
            "and TensorRT always runs on the GPU."
        )
    if kind == "ort":
        if bundle is None:
            raise BackendError("--backend ort needs --bundle DIR (made by drift-export).")
        return OrtBackend(bundle, provider, threads, precision)
    if kind == "torch":
        if precision != "fp32":
            raise BackendError(
                f"--precision {precision} selects a bundle graph; --backend torch runs in fp32."
            )
        if policy is None:
            raise BackendError(
                "--backend torch needs --policy CKPT (a lerobot-train pretrained_model/ folder)."
            )
        contract = PolicyContract.from_manifest(BundleManifest.load(bundle)) if bundle else None
        return TorchBackend(policy, contract, threads, device)
    if kind == "tensorrt":
        if bundle is None:
            raise BackendError("--backend tensorrt needs --bundle DIR (its engine is built from the bundle).")
        return TensorRTBackend(bundle, precision)
    raise BackendError(f"unknown backend {kind!r}; expected ort, torch or tensorrt.")


class FlooredBackend:
    """A backend whose calls never return sooner than ``floor_s``: the chunk time of a slower
    machine (or sampler), rehearsed here. Every caller sees it, the warm-up included, so the
    runtime plans its refills as it would there."""

    def __init__(self, inner: Backend, floor_s: float):
        self.inner, self.floor_s = inner, floor_s
        self.contract = inner.contract
        self.name = f"{inner.name}, floored at {floor_s * 1e3:g} ms"
        self.choice = getattr(inner, "choice", None)  # the report's backend_choice still says why

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.inner.infer(feeds)
        time.sleep(max(0.0, self.floor_s - (time.perf_counter() - t0)))
        return out


def backend_for(cfg) -> Backend:
    """The backend a ``RunConfig`` names; one core is left to the control loop by default."""
    threads = cfg.inference_threads or max(1, (os.cpu_count() or 2) - 1)
    backend = make_backend(
        cfg.backend, cfg.bundle, cfg.policy, cfg.ort_provider, threads, cfg.precision, cfg.device
    )
    return FlooredBackend(backend, cfg.inference_floor_ms / 1e3) if cfg.inference_floor_ms else backend
