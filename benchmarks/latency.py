"""Time per action chunk: DriftPolicy (1 U-Net call) vs DiffusionPolicy at 100 (DDPM) and 10 (DDIM) steps.

Same U-Net widths and encoder settings, same process, batch 1, CPU; the methods are timed
round-robin (one chunk each per round) so machine noise hits them alike, and the ratios are
taken from the medians. Usage::

    python -m benchmarks.latency --rounds 15 --out outputs/latency.json
"""

import argparse
import json
import platform
from datetime import date
from pathlib import Path

import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from rich.console import Console
from rich.table import Table

from lerobot_policy_drift.demos.synthetic import IMAGE, SIZES
from lerobot_policy_drift.demos.toy_methods import actor, build
from lerobot_policy_drift.drift.timing import round_robin

LAYOUTS = ("state", "1cam")


def features(layout: str) -> dict:
    inputs = {
        "observation.state": PolicyFeature(FeatureType.STATE, (6,)),
        "observation.environment_state": PolicyFeature(FeatureType.ENV, (6,)),
    }
    if layout == "1cam":
        inputs = {
            "observation.state": inputs["observation.state"],
            "observation.images.top": PolicyFeature(FeatureType.VISUAL, IMAGE),
        }
    return dict(input_features=inputs, output_features={"action": PolicyFeature(FeatureType.ACTION, (6,))})


def observation(layout: str) -> dict:
    batch = {"observation.state": torch.randn(1, 2, 6)}
    if layout == "1cam":
        batch["observation.images"] = torch.rand(1, 2, 1, *IMAGE)
    else:
        batch["observation.environment_state"] = torch.randn(1, 2, 6)
    return batch


@torch.no_grad()
def measure(size: str, layout: str, rounds: int) -> dict:
    feats = features(layout)
    actors = {m: actor(m, build(m, SIZES[size], **feats)) for m in ("drift", "dp10", "dp100")}
    batch = observation(layout)
    row = round_robin({name: (lambda a=a: a.act(batch)) for name, a in actors.items()}, rounds)
    row["ratio_dp100"] = row["dp100"]["p50_ms"] / row["drift"]["p50_ms"]
    row["ratio_dp10"] = row["dp10"]["p50_ms"] / row["drift"]["p50_ms"]
    print(f"{size:7s} {layout:5s} " + json.dumps(row), flush=True)
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=SIZES)
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("outputs/latency.json"))
    args = parser.parse_args(argv)
    results = {f"{s}/{lay}": measure(s, lay, args.rounds) for s in args.sizes for lay in args.layouts}

    table = Table(
        title=f"time per chunk, batch 1, CPU ({torch.get_num_threads()} threads), median of {args.rounds}"
    )
    for col in ("U-Net / inputs", "drift ms", "DP-10 ms", "DP-100 ms", "DP-10 / drift", "DP-100 / drift"):
        table.add_column(col, justify="right")
    for key, r in results.items():
        table.add_row(
            key,
            f"{r['drift']['p50_ms']:.2f}",
            f"{r['dp10']['p50_ms']:.1f}",
            f"{r['dp100']['p50_ms']:.1f}",
            f"{r['ratio_dp10']:.1f}×",
            f"{r['ratio_dp100']:.1f}×",
        )
    Console().print(table)
    meta = {
        "date": date.today().isoformat(),
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "sizes": SIZES, "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
