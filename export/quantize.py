"""INT8 static quantization (QDQ, per-channel weights) of a bundle graph for CPU inference.

Only the weight-heavy ops (Conv, Gemm, MatMul) are quantized; normalization layers, softmax
and the element-wise tail stay in FP32, and so do the U-Net's FiLM conditioning layers: their
shared input (observation features next to the normalized state) spans ranges one uint8 scale
cannot hold; quantized, each alone cost 0.14 normalized on the arm demo policy (BENCHMARKS §4). Activations are calibrated on the training dataset's
observations. Measured on this project's CPU: ~1.8× faster than FP32 for the default U-Net;
accuracy is gated like FP32 but with the looser INT8_GATE (see export/parity.py).
"""

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process


class _Feeds(CalibrationDataReader):
    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)


FP32_SCOPES = ("cond_encoder",)  # node-name parts kept in FP32 (see above)
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")


def quantize_int8(
    fp32_model: Path, out: Path, calibration: list[dict[str, np.ndarray]], only: list[str] | None = None
) -> None:
    """Quantize ``fp32_model`` into ``out``; ``only`` names the nodes to quantize instead of the
    default selection (benchmarks/int8_sensitivity.py quantizes one at a time)."""
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_model), str(prepared))
        keep = [n.name for n in onnx.load(str(prepared)).graph.node if any(s in n.name for s in FP32_SCOPES)]
        quantize_static(
            str(prepared),
            str(out),
            _Feeds(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(QUANTIZED_OPS),
            nodes_to_quantize=only,
            nodes_to_exclude=[] if only else keep,
        )
