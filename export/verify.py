"""Re-check a bundle on the machine at hand with its stored golden inputs and expected outputs."""

from pathlib import Path

import numpy as np

from .manifest import GOLDEN_FILE, BundleManifest
from .onnxrt import provider_session, run
from .parity import ACCELERATOR_GATE, GATES, ParityFigures, compare, to_normalized


def verify_bundle(bundle: Path, provider: str = "cpu") -> list[tuple[str, ParityFigures, bool]]:
    """Digests, then each graph of the bundle on the golden set against the stored reference,
    in ONNX Runtime with ``provider`` (cpu / cuda / tensorrt).

    Returns (backend, figures, passed) per graph: on the CPU judged by the gate it was exported
    under; on a GPU provider by the accelerator gate (other kernels, TF32 convolutions).
    """
    manifest = BundleManifest.load(bundle)
    golden = np.load(Path(bundle) / GOLDEN_FILE)
    names = [spec.name for spec in manifest.inputs]
    scale = golden["action_scale"]
    offset = golden["action_offset"] if "action_offset" in golden.files else np.zeros_like(scale)
    results = []
    for report in manifest.parity:
        if provider != "cpu" and report.backend.endswith("int8"):
            continue  # the INT8 graph is a CPU graph (QDQ for MLAS)
        session = provider_session(Path(bundle) / report.model, provider)
        figures = ParityFigures()
        for i in range(len(golden["expected"])):
            out = run(session, {name: golden[f"input.{name}"][i] for name in names})
            expected = golden["expected"][i]
            normalized = compare(to_normalized(out, offset, scale), to_normalized(expected, offset, scale))
            figures.add(normalized, robot_abs=float(np.abs(out - expected).max()))
        if provider == "cpu":
            results.append((report.backend, figures, GATES[report.backend].passes(figures)))
        else:
            backend = report.backend.replace("onnxruntime-cpu", f"onnxruntime-{provider}")
            results.append((backend, figures, ACCELERATOR_GATE.passes(figures)))
    return results
