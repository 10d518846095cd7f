"""Prepare the GPU check's carry (issue 19): the policies it times, as ``torch.export`` programs that
need nothing but torch to run, so the lent GPU machine (no LeRobot, no package registry, 64 MiB per
call) can run DriftGraph — the torch backend's computation — without installing anything.

For each size (``demos.synthetic.SIZES``) and camera count, a random-weight DriftPolicy is wrapped
in ``export.graph.DriftGraph`` and exported; its convolution and linear weights (nearly all of the
bytes) are then zeroed and the file gzipped (zeros compress to almost nothing), and
``benchmarks/gpu_check.py`` draws them again on the device from PyTorch's default initialization
range. Biases, norm scales, buffers and the normalization statistics are kept as they are.

    python -m benchmarks.gpu_check_prepare --out outputs/gpu_carry
"""

import argparse
import gzip
import io
import json
from pathlib import Path

import torch

from lerobot_policy_drift.demos.synthetic import IMAGE, SIZES, synthetic_checkpoint
from lerobot_policy_drift.export.graph import DriftGraph, input_names

CARRY_LIMIT = 64 * 2**20  # what one device call may carry, in all


def example_inputs(ckpt) -> tuple[torch.Tensor, ...]:
    cfg = ckpt.policy.config
    shapes = {"observation.state": ((1, cfg.n_obs_steps, 6), torch.float32)}
    for key in cfg.image_features:
        shapes[key] = ((1, cfg.n_obs_steps, *IMAGE), torch.uint8)
    shapes["noise"] = ((1, cfg.horizon, 6), torch.float32)
    return tuple(torch.zeros(*shapes[n][0], dtype=shapes[n][1]) for n in input_names(ckpt))


def export_program(ckpt) -> tuple[bytes, dict]:
    """(gzipped program with its conv/linear weights zeroed, its description)."""
    graph = DriftGraph(ckpt)
    inputs = example_inputs(ckpt)
    with torch.no_grad():
        program = torch.export.export(graph, inputs, strict=False)
    n_params = sum(v.numel() for v in program.state_dict.values())
    redrawn = [k for k, v in program.state_dict.items() if k.endswith(".weight") and v.ndim >= 2]
    for key in redrawn:  # conv / linear weights: nearly all of the bytes
        program.state_dict[key].detach().zero_()
    raw = io.BytesIO()
    torch.export.save(program, raw)
    spec = {
        "parameters": n_params,
        "redrawn": redrawn,
        "inputs": [
            {"name": n, "shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
            for n, t in zip(input_names(ckpt), inputs, strict=True)
        ],
        "action_units": "normalized ([-1, 1] statistics: robot units equal normalized units)",
    }
    return gzip.compress(raw.getvalue(), 6), spec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("outputs/gpu_carry"))
    p.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["small", "default"])
    p.add_argument("--cameras", nargs="+", type=int, default=[1, 2])
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    programs = []
    for size in args.sizes:
        for cameras in args.cameras:
            blob, spec = export_program(synthetic_checkpoint(SIZES[size], cameras))
            spec.update(size=size, cameras=cameras, file=f"{size}_{cameras}cam.pt2.gz")
            (args.out / spec["file"]).write_bytes(blob)
            programs.append(spec)
            print(f"{spec['file']}: {spec['parameters'] / 1e6:.1f} M parameters, {len(blob) / 2**20:.2f} MiB")
    (args.out / "programs.json").write_text(
        json.dumps({"torch": torch.__version__, "programs": programs}, indent=1)
    )
    total = sum(f.stat().st_size for f in args.out.iterdir())
    print(f"carry: {total / 2**20:.1f} MiB in {args.out} (limit {CARRY_LIMIT / 2**20:.0f} MiB)")
    if total > CARRY_LIMIT:
        print("too large for one device call: prepare fewer sizes")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
