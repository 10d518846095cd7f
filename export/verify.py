"""Re-check a bundle on the machine at hand with its stored golden inputs and expected outputs."""

from pathlib import Path

import numpy as np

from .manifest import GOLDEN_FILE, MODEL_FILE, BundleManifest
from .onnxrt import create_session, run
from .parity import FP32_GATE, ParityFigures, compare


def verify_bundle(bundle: Path) -> tuple[BundleManifest, ParityFigures, bool]:
    """Digests, then the golden set through ONNX Runtime CPU against the stored reference."""
    manifest = BundleManifest.load(bundle)
    golden = np.load(Path(bundle) / GOLDEN_FILE)
    session = create_session(Path(bundle) / MODEL_FILE)
    names = [spec.name for spec in manifest.inputs]
    scale = golden["action_scale"]
    figures = ParityFigures()
    for i in range(len(golden["expected"])):
        out = run(session, {name: golden[f"input.{name}"][i] for name in names})
        expected = golden["expected"][i]
        figures.add(compare(out / scale, expected / scale), robot_abs=float(np.abs(out - expected).max()))
    return manifest, figures, FP32_GATE.passes(figures)
