"""Which layers cost INT8 its accuracy: quantize one weight layer at a time and gate each graph.

Same reference, inputs and gate figures as ``drift-export --int8`` (16 random + 16 dataset
inputs, max |Δ| and min cosine in normalized action units); the last row quantizes every layer
``export.quantize`` quantizes. Usage::

    python -m benchmarks.int8_sensitivity --ckpt CKPT [--dataset-root DIR] [--top 12]
"""

import argparse
import tempfile
from pathlib import Path

import onnx
import torch
from onnxruntime.quantization.shape_inference import quant_pre_process
from rich.console import Console
from rich.table import Table

from lerobot_policy_drift.export.bundle import export_onnx
from lerobot_policy_drift.export.checkpoint import load_checkpoint
from lerobot_policy_drift.export.graph import DriftGraph
from lerobot_policy_drift.export.harness import dataset_inputs, gate, random_inputs, references
from lerobot_policy_drift.export.quantize import QUANTIZED_OPS, quantize_int8


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", type=Path, required=True)
    p.add_argument("--dataset-root", type=Path)
    p.add_argument("--top", type=int, default=12, help="rows shown, worst first")
    args = p.parse_args(argv)
    ckpt = load_checkpoint(args.ckpt, args.dataset_root)
    gen = torch.Generator().manual_seed(0)
    tmp = Path(tempfile.mkdtemp(prefix="int8_sensitivity."))
    export_onnx(DriftGraph(ckpt), random_inputs(ckpt, 1, 1, gen).feeds[0], tmp / "model.onnx", 17)
    sets = [random_inputs(ckpt, 1, 16, gen), dataset_inputs(ckpt, 1, 16, gen)]
    refs = references(ckpt, sets)
    quant_pre_process(str(tmp / "model.onnx"), str(tmp / "prepared.onnx"))
    layers = [n.name for n in onnx.load(str(tmp / "prepared.onnx")).graph.node if n.op_type in QUANTIZED_OPS]
    rows = []
    for layer in layers:
        quantize_int8(tmp / "model.onnx", tmp / "one.onnx", sets[1].feeds, only=[layer])
        report = gate(ckpt, tmp, "one.onnx", "onnxruntime-cpu-int8", refs)
        rows.append((layer, report.max_abs_normalized, report.min_cosine))
    rows.sort(key=lambda r: -r[1])
    quantize_int8(tmp / "model.onnx", tmp / "all.onnx", sets[1].feeds)
    report = gate(ckpt, tmp, "all.onnx", "onnxruntime-cpu-int8", refs)
    table = Table(title=f"INT8, one layer at a time ({args.ckpt})")
    for col in ("layer quantized", "max |Δ| normalized", "min cosine"):
        table.add_column(col)
    for layer, max_abs, cos in rows[: args.top]:
        table.add_row(layer, f"{max_abs:.4f}", f"{cos:.6f}")
    table.add_row(
        "[b]export.quantize (all it quantizes)[/b]",
        f"{report.max_abs_normalized:.4f}",
        f"{report.min_cosine:.6f}",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
