"""Batch-1 latency per chunk: PyTorch eager vs the exported graph in ONNX Runtime (CPU, FP32).

Same policy, same process, round-robin timing. "eager" is what a LeRobot user runs per chunk
(preprocessor + ``predict_action_chunk`` + postprocessor); "eager core" is ``predict_action_chunk``
alone. Also compares ORT with the machine's floor for the graph: max(FLOPs / measured matmul
throughput, weight bytes / measured streaming bandwidth). The bandwidth is measured on a buffer
of the graph's own weight size, read repeatedly the way batch-1 inference reads its weights (a
matrix-vector product): a graph whose weights fit in the last-level cache is served from there
on every call after the first, a larger one from DRAM. A second table splits ORT's time into the
vision encoder and the U-Net (``export/graph_profile.py``, ONNX Runtime's profiler) and sets each
against its own floor. Random weights: latency does not depend on their values. Usage::

    python -m benchmarks.export_latency --rounds 30 --out outputs/export_latency.json
"""

import argparse
import json
import platform
import re
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from lerobot_policy_drift.demos.synthetic import SIZES, synthetic_checkpoint
from lerobot_policy_drift.drift.timing import time_calls, time_turns
from lerobot_policy_drift.export.bundle import export_onnx
from lerobot_policy_drift.export.checkpoint import LoadedCheckpoint
from lerobot_policy_drift.export.fp16 import convert_fp16
from lerobot_policy_drift.export.graph import DriftGraph, action_affine
from lerobot_policy_drift.export.graph_profile import profile_graph
from lerobot_policy_drift.export.harness import random_inputs, reference_actions
from lerobot_policy_drift.export.onnxrt import create_session, run
from lerobot_policy_drift.export.parity import ParityFigures, compare, to_normalized
from lerobot_policy_drift.export.quantize import quantize_int8

# FlopCounterMode module names of the parts export/graph_profile.py charges time to
PART_MODULES = {
    "vision encoder": r"DriftGraph\.policy\.model\.rgb_encoder(\.\d+)?",
    "U-Net": r"DriftGraph\.policy\.model\.unet",
}


def matmul_gflops() -> float:
    """Dense fp32 matmul throughput here, with torch on this process's threads."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    t0 = time.perf_counter()
    for _ in range(5):
        a @ b
    return 5 * 2 * 2048**3 / (time.perf_counter() - t0) / 1e9


def stream_gbps(nbytes: int, repeats: int = 10) -> float:
    """GB/s reading a ``nbytes`` fp32 matrix once per matrix-vector product, repeated (median)."""
    cols = 4096
    matrix = torch.randn(max(nbytes // 4 // cols, 1), cols)
    vector = torch.randn(cols)
    times = time_calls(lambda: matrix @ vector, repeats, warmup=1)
    return matrix.numel() * 4 / float(np.median(times)) / 1e9


@torch.no_grad()
def _parity(ckpt: LoadedCheckpoint, session, feeds: list[dict]) -> ParityFigures:
    """A graph against the eager policy through LeRobot's processors, normalized action units."""
    offset, scale = action_affine(ckpt, ckpt.policy.config.action_feature.shape[0])
    figures = ParityFigures()
    for f in feeds:
        expected = to_normalized(reference_actions(ckpt, f), offset, scale)
        figures.add(compare(to_normalized(run(session, f), offset, scale), expected), robot_abs=0.0)
    return figures


def measure(size: str, cameras: int, rounds: int, block: int, gflops: float, variants: list[str]) -> dict:
    """Timings (and, for the ``variants`` graphs fp16 / int8, parity) of one synthetic policy."""
    ckpt = synthetic_checkpoint(SIZES[size], cameras)
    graph = DriftGraph(ckpt)
    feed = random_inputs(ckpt, 1, 1, torch.Generator().manual_seed(0)).feeds[0]
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.onnx"
        export_onnx(graph, feed, model, opset=17)
        session = create_session(model)
        tensors = [torch.from_numpy(v) for v in feed.values()]
        with FlopCounterMode(display=False) as counter:
            graph(*tensors)
        flops = counter.get_total_flops()
        weight_bytes = sum(p.numel() * 4 for p in graph.parameters())
        part_flops = {
            part: sum(
                sum(c.values()) for m, c in counter.get_flop_counts().items() if re.fullmatch(pattern, m)
            )
            for part, pattern in PART_MODULES.items()
        }
        part_bytes = {
            part: sum(p.numel() * 4 for p in module.parameters())
            for part, module in (
                ("vision encoder", graph.policy.model.rgb_encoder),
                ("U-Net", graph.policy.model.unet),
            )
        }
        obs = {
            k: (torch.from_numpy(v).float() / 255 if v.dtype == np.uint8 else torch.from_numpy(v))
            for k, v in feed.items()
            if k != "noise"
        }
        normalized_obs = ckpt.preprocessor(obs)
        noise = torch.from_numpy(feed["noise"])
        calls = {
            "eager": lambda: reference_actions(ckpt, feed),
            "eager_core": lambda: ckpt.policy.predict_action_chunk(normalized_obs, noise=noise),
            "ort": lambda: run(session, feed),
        }
        extra = random_inputs(ckpt, 1, 8, torch.Generator().manual_seed(1)).feeds
        parity = {}
        for variant in variants:
            path = Path(tmp) / f"{variant}.onnx"
            if variant == "int8":
                quantize_int8(model, path, extra)
            else:
                convert_fp16(model, path)
            variant_session = create_session(path)
            calls[f"ort_{variant}"] = lambda s=variant_session: run(s, feed)
            parity[variant] = _parity(ckpt, variant_session, extra)
        for call in calls.values():
            call()
        steady = time_turns(calls, rounds, block)
        interleaved = time_turns(calls, rounds, 1)
        profile = profile_graph(model, [feed], calls=rounds)  # last: the process is warm by now
    row = {
        name: {
            "p50_ms": float(np.median(t)),
            "p99_ms": float(np.percentile(t, 99)),
            "interleaved_p50_ms": float(np.median(interleaved[name])),
            "interleaved_p99_ms": float(np.percentile(interleaved[name], 99)),
        }
        for name, t in steady.items()
    }
    gbps = stream_gbps(weight_bytes)
    floor_ms = max(flops / (gflops * 1e9), weight_bytes / (gbps * 1e9)) * 1000
    row.update(
        stream_gbps=gbps,
        gflop=flops / 1e9,
        weight_mb=weight_bytes / 1e6,
        floor_ms=floor_ms,
        speedup_vs_eager=row["eager"]["p50_ms"] / row["ort"]["p50_ms"],
        interleaved_speedup_vs_eager=row["eager"]["interleaved_p50_ms"] / row["ort"]["interleaved_p50_ms"],
        speedup_vs_eager_core=row["eager_core"]["p50_ms"] / row["ort"]["p50_ms"],
        ort_over_floor=row["ort"]["p50_ms"] / floor_ms,
    )
    row["parts"] = {
        part: {
            "ort_ms_profiled": profile.parts_ms[part],
            "share_of_call": profile.parts_ms[part] / profile.wall_ms,
            "gflop": part_flops[part] / 1e9,
            "weight_mb": part_bytes[part] / 1e6,
            "floor_ms": max(part_flops[part] / (gflops * 1e9), part_bytes[part] / (gbps * 1e9)) * 1000,
        }
        for part in PART_MODULES
    }
    row["profile"] = profile.to_json()
    for variant, figures in parity.items():
        row[f"{variant}_speedup_vs_ort"] = row["ort"]["p50_ms"] / row[f"ort_{variant}"]["p50_ms"]
        row[f"{variant}_max_abs_normalized"] = figures.max_abs
        row[f"{variant}_min_cosine"] = figures.min_cosine
    print(f"{size} {cameras}cam " + json.dumps(row), flush=True)
    return row


def _table(title: str, columns: str) -> Table:
    """A rich table with right-aligned columns named by ``columns`` ("a|b|c")."""
    table = Table(title=title)
    for col in columns.split("|"):
        table.add_column(col, justify="right")
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=SIZES)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument(
        "--block", type=int, default=6, help="consecutive calls per turn; the first of each is not kept"
    )
    parser.add_argument("--int8", action="store_true", help="also the INT8 graph (drift-export --int8)")
    parser.add_argument("--fp16", action="store_true", help="also the FP16 graph (drift-export --fp16)")
    parser.add_argument("--out", type=Path, default=Path("outputs/export_latency.json"))
    args = parser.parse_args(argv)
    variants = [v for v in ("int8", "fp16") if getattr(args, v)]
    gflops = matmul_gflops()
    print(f"machine: matmul {gflops:.1f} GFLOP/s ({torch.get_num_threads()} threads)")
    results = {
        f"{s}/{c}cam": measure(s, c, args.rounds, args.block, gflops, variants)
        for s in args.sizes
        for c in args.cameras
    }
    table = _table(
        f"batch-1 chunk latency, CPU, {torch.get_num_threads()} threads, {args.rounds} rounds "
        f"of {args.block} calls (steady); interleaved = each call right after the other backend's",
        "U-Net / cams|eager p50/p99|eager core p50|ORT p50/p99|ORT ×|interleaved eager/ORT p50|"
        "ORT × interl.|GFLOP|MB|GB/s|floor|ORT/floor",
    )
    for key, r in results.items():
        table.add_row(
            key,
            f"{r['eager']['p50_ms']:.1f}/{r['eager']['p99_ms']:.1f}",
            f"{r['eager_core']['p50_ms']:.1f}",
            f"{r['ort']['p50_ms']:.1f}/{r['ort']['p99_ms']:.1f}",
            f"{r['speedup_vs_eager']:.2f}",
            f"{r['eager']['interleaved_p50_ms']:.1f}/{r['ort']['interleaved_p50_ms']:.1f}",
            f"{r['interleaved_speedup_vs_eager']:.2f}",
            f"{r['gflop']:.2f}",
            f"{r['weight_mb']:.0f}",
            f"{r['stream_gbps']:.1f}",
            f"{r['floor_ms']:.1f}",
            f"{r['ort_over_floor']:.2f}",
        )
    Console(width=220).print(table)
    parts = _table(
        "where ORT's time goes (profiler on), against each part's own floor",
        "U-Net / cams|call profiled / plain|part|ms|share|GFLOP|MB|floor|ms/floor",
    )
    for key, r in results.items():
        prof = r["profile"]
        for part, p in r["parts"].items():
            parts.add_row(
                key,
                f"{prof['wall_ms']:.1f} / {prof['plain_wall_ms']:.1f}",
                part,
                f"{p['ort_ms_profiled']:.1f}",
                f"{p['share_of_call']:.0%}",
                f"{p['gflop']:.2f}",
                f"{p['weight_mb']:.0f}",
                f"{p['floor_ms']:.1f}",
                f"{p['ort_ms_profiled'] / p['floor_ms']:.1f}",
            )
    Console(width=220).print(parts)
    meta = {
        "date": date.today().isoformat(),
        "machine": platform.machine(),
        "peak_gflops": gflops,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
