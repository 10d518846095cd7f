"""Re-check a bundle on the machine at hand with its stored golden inputs and expected outputs."""

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .manifest import GOLDEN_FILE, BundleManifest, ParityReport
from .onnxrt import bundle_session, run
from .parity import ACCELERATOR_GATE, GATES, ParityFigures, measure

ENGINE = "tensorrt-engine"  # the native TensorRT engine rather than an ONNX Runtime provider
GraphCall = Callable[[dict[str, np.ndarray]], np.ndarray]  # one graph, on some backend


def _precision(report: ParityReport) -> str:
    return report.backend.rsplit("-", 1)[-1]


def _graph_call(
    bundle: Path, manifest: BundleManifest, report: ParityReport, backend: str
) -> GraphCall | None:
    """How to run this graph of the bundle on ``backend``; None where that graph does not apply
    (INT8 QDQ is a CPU graph; TensorRT engines are FP32 or FP16)."""
    if backend == ENGINE:
        if _precision(report) not in ("fp32", "fp16"):
            return None
        from .tensorrt import EngineRunner, ensure_engine

        return EngineRunner(ensure_engine(bundle, _precision(report))).run
    if backend != "cpu" and _precision(report) == "int8":
        return None
    session = bundle_session(bundle, manifest, _precision(report), backend)
    return lambda feed: run(session, feed)


def verify_bundle(bundle: Path, backend: str = "cpu") -> list[tuple[str, ParityFigures, bool]]:
    """Digests, then each graph of the bundle on the golden set against the stored reference, in
    ONNX Runtime with provider ``backend`` (cpu / cuda / tensorrt) or as a native TensorRT engine
    (``tensorrt-engine``, built and cached on first use).

    Returns (backend, figures, passed) per graph: on the CPU judged by the gate it was exported
    under; off the CPU by the accelerator gate (other kernels, TF32 convolutions, FP16).
    """
    bundle = Path(bundle)
    results = []
    manifest = BundleManifest.load(bundle)
    for report in manifest.parity:
        graph = _graph_call(bundle, manifest, report, backend)
        if graph is None:
            continue
        figures = golden_figures(bundle, graph)
        if backend == "cpu":
            results.append((report.backend, figures, GATES[report.backend].passes(figures)))
        else:
            prefix = backend if backend == ENGINE else f"onnxruntime-{backend}"
            results.append((f"{prefix}-{_precision(report)}", figures, ACCELERATOR_GATE.passes(figures)))
    return results


def golden_figures(bundle: Path, graph: GraphCall) -> ParityFigures:
    """``graph`` on the bundle's golden inputs against its stored expected outputs."""
    manifest = BundleManifest.load(bundle, verify_files=False)
    golden = np.load(Path(bundle) / GOLDEN_FILE)
    names = [spec.name for spec in manifest.inputs]
    scale = golden["action_scale"]
    offset = golden["action_offset"] if "action_offset" in golden.files else np.zeros_like(scale)
    expected = golden["expected"]
    feeds = [{name: golden[f"input.{name}"][i] for name in names} for i in range(len(expected))]
    return measure(graph, feeds, expected, offset, scale)
