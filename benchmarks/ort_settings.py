"""Which ONNX Runtime CPU settings give the lowest batch-1 chunk latency here? Measured, side by side.

One exported graph (default U-Net, one 96×96 camera, random weights), one session per setting,
round-robin timing (``--block N``: turns of N calls, see benchmarks/timing.py). Settings:
intra-op threads 1/2, thread spinning on/off, graph optimization basic/all, and plain ``run`` vs
IOBinding into a preallocated output. Usage::

    python -m benchmarks.ort_settings --rounds 30
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from lerobot_policy_drift.demos.synthetic import SIZES, synthetic_checkpoint
from lerobot_policy_drift.drift.timing import round_robin
from lerobot_policy_drift.export.bundle import export_onnx
from lerobot_policy_drift.export.graph import DriftGraph
from lerobot_policy_drift.export.harness import random_inputs
from lerobot_policy_drift.export.onnxrt import create_session, run


def bound_call(session: ort.InferenceSession, feed: dict[str, np.ndarray]):
    """IOBinding with inputs bound once and the output written into one preallocated buffer."""
    binding = session.io_binding()
    for name, value in feed.items():
        binding.bind_cpu_input(name, value)
    out = session.get_outputs()[0]
    buffer = np.empty([d for d in out.shape], dtype=np.float32)
    binding.bind_output(out.name, "cpu", 0, np.float32, buffer.shape, buffer.ctypes.data)
    return lambda: session.run_with_iobinding(binding)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="default", choices=SIZES)
    parser.add_argument("--cameras", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument(
        "--block", type=int, default=1, help="consecutive calls per turn, the first not kept (1: interleaved)"
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/ort_settings.json"))
    args = parser.parse_args(argv)
    ckpt = synthetic_checkpoint(SIZES[args.size], args.cameras)
    feed = random_inputs(ckpt, 1, 1, torch.Generator().manual_seed(0)).feeds[0]
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.onnx"
        export_onnx(DriftGraph(ckpt), feed, model, opset=17)
        calls = {}
        for threads in (1, 2):
            for spinning in (False, True):
                for level in ("basic", "all"):
                    session = create_session(model, threads=threads, spinning=spinning, level=level)
                    key = f"threads={threads} spin={'on' if spinning else 'off'} opt={level}"
                    calls[key + " run"] = lambda s=session: run(s, feed)
                    if level == "all":
                        calls[key + " iobinding"] = bound_call(session, feed)
        results = round_robin(calls, args.rounds, args.block)
    best = min(results, key=lambda k: results[k]["p50_ms"])
    for key, r in sorted(results.items(), key=lambda kv: kv[1]["p50_ms"]):
        print(
            f"{key:45s} p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  ({r['p50_ms'] / results[best]['p50_ms']:.2f}× best)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"size": args.size, "cameras": args.cameras, "block": args.block, "results": results}, indent=2
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
