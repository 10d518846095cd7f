"""Time of one DriftPolicy training step (forward + backward + AdamW) for the real-data recipe.

Uses the recipe's policy settings (configs/drift_so100.json) with a 6-motor state and one or
two 240×320 cameras, on this machine's CPU (or CUDA if present). Usage::

    python -m benchmarks.train_step --batch-size 8 --cameras 1 2

``--demo`` times the arm demo's step instead (its lerobot-train arguments, the 64×48 camera,
batch 16) against the same step with one ResNet stage, one observation frame, and both (the
lean policy), and the recipe and the lean step with AdamW's per-tensor loop (torch's CPU default,
``--policy.optimizer_fused=false``), the steps taking turns so machine noise hits them alike, and
prints the ratios::

    python -m benchmarks.train_step --demo --rounds 30
"""

import argparse
import json
from pathlib import Path

import torch
from lerobot.configs.types import FeatureType, PolicyFeature

from lerobot_policy_drift.drift import DriftConfig, DriftPolicy
from lerobot_policy_drift.drift.timing import round_robin, time_calls

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


def demo_config(*args: str) -> DriftConfig:
    """The DriftConfig that lerobot-train builds from the demo's ``--policy.*`` arguments."""
    import draccus

    from lerobot_policy_drift.demos.arm import CAMERA

    inputs = {
        "observation.state": PolicyFeature(FeatureType.STATE, (6,)),
        f"observation.images.{CAMERA.name}": PolicyFeature(
            FeatureType.VISUAL, (3, CAMERA.height, CAMERA.width)
        ),
    }
    outputs = {"action": PolicyFeature(FeatureType.ACTION, (6,))}
    policy_args = [a.replace("--policy.", "--") for a in args if a.startswith("--policy.")]
    cfg = draccus.parse(DriftConfig, args=[*policy_args, "--device=cpu"])
    cfg.input_features, cfg.output_features = inputs, outputs
    return cfg


def training_step(cfg: DriftConfig, batch_size: int, device: str):
    """One forward + backward + AdamW step of a fresh policy on random data of ``cfg``'s shapes."""
    policy = DriftPolicy(cfg).to(device).train()
    opt = cfg.get_optimizer_preset().build(policy.get_optim_params())
    frames = cfg.n_obs_steps
    batch = {"observation.state": torch.randn(batch_size, frames, 6, device=device)}
    for key, feature in cfg.image_features.items():
        batch[key] = torch.rand(batch_size, frames, *feature.shape, device=device)
    batch["action"] = torch.rand(batch_size, cfg.horizon, 6, device=device) * 2 - 1

    def step() -> None:
        loss, _ = policy.forward(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def step_time(cameras: int, batch_size: int, steps: int, device: str) -> float:
    step = training_step(recipe_config(cameras, device), batch_size, device)
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
    parser.add_argument("--demo", action="store_true", help="the arm demo's step against its lean variant")
    parser.add_argument("--rounds", type=int, default=30, help="with --demo: turns of each step")
    args = parser.parse_args(argv)
    if args.demo:
        return compare_demo_steps(args.rounds)
    for cams in args.cameras:
        t = step_time(cams, args.batch_size, args.steps, args.device)
        print(
            f"{args.device} cameras={cams} batch={args.batch_size}: {t:.2f} s/step "
            f"({t / args.batch_size * 1000:.0f} ms/sample; batch 64 ≈ {t / args.batch_size * 64:.1f} s/step)"
        )


def compare_demo_steps(rounds: int) -> None:
    """The demo's training step (two ResNet stages, two frames) against the lean one and each of
    its two levers alone, and both ends with AdamW unfused (torch's CPU default), side by side."""
    from lerobot_policy_drift.demos.arm import BATCH_SIZE, DRIFT_ARGS, LEAN_ARGS, TRAIN_ARGS

    one_stage, one_frame = LEAN_ARGS
    loop = "--policy.optimizer_fused=false"  # torch's CPU default: AdamW loops over the tensors
    variants = {
        "two stages, two frames (the recipe)": DRIFT_ARGS,
        "one stage, two frames": (one_stage,),
        "two stages, one frame": (*DRIFT_ARGS, one_frame),
        "one stage, one frame (lean)": LEAN_ARGS,
        "the recipe, AdamW's per-tensor loop": (*DRIFT_ARGS, loop),
        "lean, AdamW's per-tensor loop": (*LEAN_ARGS, loop),
    }
    steps = {
        name: training_step(demo_config(*TRAIN_ARGS, *args), BATCH_SIZE, "cpu")
        for name, args in variants.items()
    }
    timed = round_robin(steps, rounds)
    base = timed["two stages, two frames (the recipe)"]["p50_ms"]
    print(f"CPU, {torch.get_num_threads()} threads, batch {BATCH_SIZE}, 64×48 camera, {rounds} rounds:")
    for name, t in timed.items():
        print(
            f"  {name}: {t['p50_ms']:.0f} ms/step p50 ({t['p99_ms']:.0f} p99), {base / t['p50_ms']:.2f}x the recipe's rate"
        )


if __name__ == "__main__":
    main()
