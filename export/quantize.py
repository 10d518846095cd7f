"""INT8 static quantization (QDQ, per-channel weights) of the vision encoder, for CPU inference.

Only the encoder's weight layers (Conv, Gemm, MatMul under ``/rgb_encoder``) are quantized; the
U-Net, normalization layers, softmax and the element-wise tail stay FP32. Measured one layer at a
time (``benchmarks/int8_sensitivity.py``, BENCHMARKS §4) on the arm demo policy: each encoder
convolution costs ≤ 0.005 normalized, each U-Net convolution 0.01–0.06 and each FiLM conditioning
layer ~0.14 (one uint8 scale cannot hold keypoints, state and step embedding together), so the
whole network quantized misses the gate while the encoder alone passes it (0.018). The encoder is
also where ONNX Runtime spends most of a small policy's time. Activations are calibrated on the
training dataset's observations; accuracy is gated with INT8_GATE (see export/parity.py).
"""

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from .checkpoint import ExportError

QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")
QUANTIZED_SCOPE = "/rgb_encoder"  # node-name prefix of DriftGraph's vision encoder


class _Feeds(CalibrationDataReader):
    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)


def quantize_int8(
    fp32_model: Path, out: Path, calibration: list[dict[str, np.ndarray]], only: list[str] | None = None
) -> None:
    """Quantize ``fp32_model`` into ``out``; ``only`` names the nodes to quantize instead of the
    encoder's (benchmarks/int8_sensitivity.py quantizes one at a time)."""
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_model), str(prepared))
        nodes = only or [
            n.name
            for n in onnx.load(str(prepared)).graph.node
            if n.op_type in QUANTIZED_OPS and n.name.startswith(QUANTIZED_SCOPE)
        ]
        if not nodes:
            raise ExportError(
                "--int8 quantizes the vision encoder, and this policy has no cameras; drop --int8."
            )
        quantize_static(
            str(prepared),
            str(out),
            _Feeds(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(QUANTIZED_OPS),
            nodes_to_quantize=nodes,
        )
