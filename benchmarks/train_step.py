"""Time of one DriftPolicy training step (forward + backward + AdamW) for the real-data recipe.

Uses the recipe's policy settings (configs/drift_so100.json) with a 6-motor state and one or
two 240×320 cameras, on this machine's CPU (or CUDA if present). Usage::

    python -m benchmarks.train_step --batch-size 8 --cameras 1 2
"""

import argparse
import json
from pathlib import Path

import torch
from lerobot.configs.types import FeatureType, PolicyFeature

from lerobot_policy_drift.drift import DriftConfig, DriftPolicy
from lerobot_policy_drift.drift.timing import time_calls

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "drift_so100.json"
POLICY_KEYS_SKIPPED = {"type", "device", "push_to_hub"}


def recipe_config(cameras: int, device: str) -> DriftConfig:
    settings = {
        k: v for k, v in json.loads(RECIPE.read_text())["policy"].items() if k not in POLICY_KEYS_SKIPPED
    }
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (6,))}
    for i in range(cameras):
        inputs[f"observation.images.cam{i}"] = PolicyFeature(FeatureType.VISUAL, (3, 240, 320))
    outputs = {"action": PolicyFeature(FeatureType.ACTION, (6,))}
    return DriftConfig(input_features=inputs, output_features=outputs, device=device, **settings)


def step_time(cameras: int, batch_size: int, steps: int, device: str) -> float:
    cfg = recipe_config(cameras, device)
    policy = DriftPolicy(cfg).to(device).train()
    opt = cfg.get_optimizer_preset().build(policy.get_optim_params())
    batch = {"observation.state": torch.randn(batch_size, 2, 6, device=device)}
    for key in cfg.image_features:
        batch[key] = torch.rand(batch_size, 2, 3, 240, 320, device=device)
    batch["action"] = torch.rand(batch_size, cfg.horizon, 6, device=device) * 2 - 1

    def step() -> None:
        loss, _ = policy.forward(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    times = time_calls(step, steps, warmup=1)  # the first step warms up allocators and kernels
    return sorted(times)[len(times) // 2]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    for cams in args.cameras:
        t = step_time(cams, args.batch_size, args.steps, args.device)
        print(
            f"{args.device} cameras={cams} batch={args.batch_size}: {t:.2f} s/step "
            f"({t / args.batch_size * 1000:.0f} ms/sample; batch 64 ≈ {t / args.batch_size * 64:.1f} s/step)"
        )


if __name__ == "__main__":
    main()
