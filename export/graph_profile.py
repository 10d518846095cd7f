"""Where one call of a bundle graph spends its time, per part of the policy, from ONNX Runtime's
own profiler.

The TorchScript exporter names every node after the module that made it (``/rgb_encoder.0/…``,
``/unet/…``), and ONNX Runtime keeps those names through its fusions, so each kernel's time can be
charged to the vision encoder, the U-Net or the glue around them (normalization, crop,
unnormalization). The layout changes ONNX Runtime's CPU provider inserts — reorders around its
blocked (NCHWc) FP32 convolutions, transposes around its NHWC quantized ones — are new nodes with
no module name; they get a line of their own, since they are the cost of leaving that layout
(for GroupNorm, say) and coming back.
"""

import bisect
import itertools
import json
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lerobot_policy_drift.drift.timing import time_turns

from .onnxrt import create_session

PARTS = ("vision encoder", "U-Net", "layout reorders", "glue")
REORDER_OPS = ("ReorderInput", "ReorderOutput")


def part_of(node: str, op: str) -> str:
    """The policy part a profiled node belongs to, from its exported name and op type."""
    if "/rgb_encoder" in node:
        return "vision encoder"
    if "/unet/" in node:
        return "U-Net"
    if op in REORDER_OPS or (op == "Transpose" and not node.startswith("/")):
        return "layout reorders"  # inserted by ONNX Runtime: exported nodes are named "/<module>/…"
    return "glue"


@dataclass
class GraphProfile:
    """Median milliseconds per call over the profiled calls (this CPU is shared and noisy, so a
    median, per part and per op type, not a mean): wall time of ``session.run`` with the profiler
    on and, timed alongside, with it off; kernel time in all, per part and per op type.

    Recording an event per node costs time inside and between the kernels (on a 2-core CPU the
    arm demo's 3.1 ms graph takes 6.7 ms profiled, the default-size policy's 26 ms one 32 ms), so
    read the per-part figures as shares of a call, and ``plain_wall_ms`` as what a call costs.
    The cost is per node, so in a small graph the shares lean towards the parts with many small
    nodes (the U-Net's GroupNorm and Mish).
    """

    calls: int
    wall_ms: float
    plain_wall_ms: float
    kernels_ms: float
    parts_ms: dict[str, float]
    ops_ms: dict[str, float]

    @property
    def outside_kernels_ms(self) -> float:
        """Wall time no kernel accounts for: ONNX Runtime's own work between kernels, and waits."""
        return self.wall_ms - self.kernels_ms

    def to_json(self) -> dict:
        return {**asdict(self), "outside_kernels_ms": self.outside_kernels_ms}


def summarize(events: list[dict], calls: int, wall_ms: float, plain_wall_ms: float) -> GraphProfile:
    """Kernel events of the last ``calls`` runs in an ONNX Runtime profile → a GraphProfile."""
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
    if len(runs) < calls:
        raise ValueError(f"the profile holds {len(runs)} runs, fewer than the {calls} asked for")
    runs = runs[-calls:]
    starts = [start for start, _ in runs]
    parts = [dict.fromkeys(PARTS, 0.0) for _ in runs]
    ops = [defaultdict(float) for _ in runs]
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        i = bisect.bisect_right(starts, e["ts"]) - 1
        if i < 0 or e["ts"] > runs[i][1]:
            continue  # a warm-up run's node
        op = e["args"]["op_name"]
        parts[i][part_of(e["name"], op)] += e["dur"] / 1000
        ops[i][op] += e["dur"] / 1000
    op_names = {op for per_call in ops for op in per_call}
    op_ms = {op: float(np.median([per_call.get(op, 0.0) for per_call in ops])) for op in op_names}
    return GraphProfile(
        calls=calls,
        wall_ms=wall_ms,
        plain_wall_ms=plain_wall_ms,
        kernels_ms=float(np.median([sum(per_call.values()) for per_call in parts])),
        parts_ms={part: float(np.median([per_call[part] for per_call in parts])) for part in PARTS},
        ops_ms=dict(sorted(op_ms.items(), key=lambda kv: -kv[1])),
    )


def profile_graph(
    model: Path,
    feeds: list[dict[str, np.ndarray]],
    calls: int = 50,
    threads: int | None = None,
    warmup: int = 5,
) -> GraphProfile:
    """Run ``model`` ``warmup`` + ``calls`` times (cycling through ``feeds``) on ONNX Runtime's CPU
    provider with its profiler on, charge the measured calls' kernel time to the policy's parts,
    and time a session without the profiler on the same feeds, call for call in turn.

    CPU only: on the CUDA provider a node's profiled time is its launch, not its execution on the
    GPU, and the TensorRT provider runs the whole graph as one node.
    """
    with tempfile.TemporaryDirectory() as tmp:
        profiled = create_session(model, threads, profile_prefix=str(Path(tmp) / "ort"))
        plain = create_session(model, threads)
        sessions = {"profiled": profiled, "plain": plain}
        cycles = {name: itertools.cycle(feeds) for name in sessions}  # both see the same feeds in turn
        calls_by_name = {name: (lambda n=name: sessions[n].run(None, next(cycles[n]))) for name in sessions}
        walls = time_turns(calls_by_name, warmup + calls)
        events = json.loads(Path(profiled.end_profiling()).read_text())
    median_ms = {name: float(np.median(w[warmup:])) for name, w in walls.items()}
    return summarize(events, calls, median_ms["profiled"], median_ms["plain"])
