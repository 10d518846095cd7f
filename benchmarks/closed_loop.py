"""Closed loop on the emulated SO-100 two-target reach: DriftPolicy vs Diffusion Policy vs regression.

Same dataset (``make demo``'s recording, or recorded here the same way), same ``lerobot-train``
recipe and step budget, same emulated arm, same runtime (``drift-run``, teleop-first, the policy
engaged per episode as in the demo). Rows:

- ``drift``: DriftPolicy, one network call per chunk, its ONNX Runtime bundle;
- ``dp100``: LeRobot's DiffusionPolicy (DDPM, 100 denoising steps), PyTorch (``--backend torch``);
- ``dp10``: the same DP checkpoint sampled with DDIM in 10 steps;
- ``regression``: the drift network trained with G = 1 (every sample pulled to its expert chunk:
  regression to the conditional mean) and run with noise_scale 0 — deterministic;
- ``drift4``: DriftPolicy with LeRobot's full encoder (four ResNet stages, as DP has it);
- ``drift-prefix``: the drift recipe with ``--policy.prefix_conditioning=true``: each chunk is
  given the plan's remaining actions (up to 4) and continues them, no cross-fade at joins;
- ``drift-bok``: the ``drift`` row's checkpoint exported with ``--batch 8``: 8 candidates per call,
  drift-run keeps the one closest to the plan's remaining actions (best-of-K, no retraining);
- ``drift-fp16`` / ``drift-int8``: the ``drift`` checkpoint's FP16 graph / INT8-encoder graph
  (``drift-export --fp16`` / ``--int8``, run with ``--precision``): does lower precision cost
  closed-loop success?

Diffusion Policy keeps LeRobot's encoder (four ResNet stages); DriftPolicy uses two (its
``vision_backbone_stages`` option, the demo's recipe), so the drift/DP gap mixes the objective
with the encoder: ``drift4`` compares the objectives on the same encoder, ``regression`` on drift's.

Per row: success, left/right split, misses and how many stopped between the targets
(``robots.tasks.between``), inference time per chunk, missed ticks, and the chunk joins (the
first new command's step from the old plan, and the largest command step within 3 ticks of a
join against elsewhere). Results go to ``OUT/closed_loop.json``; artifacts of each row stay in
``OUT/<row>/`` and are reused. ``--train-seed N`` trains the rows with lerobot-train's ``--seed=N``
into ``OUT/<row>-seedN/`` (results keyed ``<row>-seedN``): one run of a recipe does not predict
the next, so compare rows over several training seeds.
"""

import argparse
import json
import shutil
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lerobot_policy_drift.demos.arm import (
    BATCH_SIZE,
    DRIFT_ARGS,
    REPO_ID,
    TRAIN_ARGS,
    evaluate,
    export,
    record,
)
from lerobot_policy_drift.demos.emulated_policy import sampler_variant
from lerobot_policy_drift.demos.train import train_policy

DP_ARGS = (
    "--policy.crop_shape=null",  # the 64×48 camera is smaller than DP's default 84×84 crop
    "--policy.pretrained_backbone_weights=null",  # offline: no ImageNet download
    "--policy.use_group_norm=true",
    "--policy.num_inference_steps=100",
)


# Drift-network rows: the recipe's extra lerobot-train arguments.
DRIFT_ROWS = {
    "drift": DRIFT_ARGS,
    "regression": (*DRIFT_ARGS, "--policy.num_samples_per_obs=1", "--policy.noise_scale=0"),
    "drift4": (),  # LeRobot's full 4-stage encoder, as Diffusion Policy has it
    "drift-prefix": (*DRIFT_ARGS, "--policy.prefix_conditioning=true"),
}


def prepare(row: str, dataset: Path, out: Path, steps: int, train_seed: int | None = None) -> dict:
    """Train (or reuse) the row's policy; the RunConfig fields that run it."""
    tag = "" if train_seed is None else f"-seed{train_seed}"
    seed_args = () if train_seed is None else (f"--seed={train_seed}",)
    if row in PRECISION_ROWS or row == "drift-bok":  # the drift row's checkpoint, another graph
        args = (*TRAIN_ARGS, *DRIFT_ARGS, *seed_args)
        ckpt = train_policy("drift", dataset, REPO_ID, out / f"drift{tag}", steps, BATCH_SIZE, *args)
        if row == "drift-bok":
            export(ckpt, dataset, out / f"drift{tag}" / f"bundle_k{CANDIDATES}", batch=CANDIDATES)
            return {"bundle": out / f"drift{tag}" / f"bundle_k{CANDIDATES}"}
        precision = PRECISION_ROWS[row]
        export(ckpt, dataset, out / f"drift{tag}" / f"bundle_{precision}", **{precision: True})
        return {"bundle": out / f"drift{tag}" / f"bundle_{precision}", "precision": precision}
    if row in DRIFT_ROWS:
        args = (*TRAIN_ARGS, *DRIFT_ROWS[row], *seed_args)
        ckpt = train_policy("drift", dataset, REPO_ID, out / f"{row}{tag}", steps, BATCH_SIZE, *args)
        export(ckpt, dataset, out / f"{row}{tag}" / "bundle")
        return {"bundle": out / f"{row}{tag}" / "bundle"}
    args = (*TRAIN_ARGS, *DP_ARGS, *seed_args)
    ckpt = train_policy("diffusion", dataset, REPO_ID, out / f"dp{tag}", steps, BATCH_SIZE, *args)
    if row == "dp10":
        ckpt = sampler_variant(ckpt, out / f"dp{tag}" / "pretrained_model_ddim10", "DDIM", 10)
    return {"backend": "torch", "policy": ckpt}


PRECISION_ROWS = {"drift-fp16": "fp16", "drift-int8": "int8"}
CANDIDATES = 8  # drift-bok: chunks per call
ROWS = ("drift", "dp100", "dp10", "regression", "drift4", "drift-prefix", "drift-bok", *PRECISION_ROWS)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/closed_loop"))
    parser.add_argument("--dataset", type=Path, default=Path("outputs/arm_demo/dataset"))
    parser.add_argument(
        "--demos", type=int, default=40, help="demonstrations, if the dataset is recorded here"
    )
    parser.add_argument("--steps", type=int, default=1500, help="lerobot-train steps, every row")
    parser.add_argument("--episodes", type=int, default=50, help="closed-loop episodes per row")
    parser.add_argument("--episode-s", type=float, default=4.0)
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    parser.add_argument("--seed", type=int, default=0, help="recording and target layouts")
    parser.add_argument("--train-seed", type=int, help="lerobot-train --seed (default: its own)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    record(args.dataset, args.demos, args.out / "record_rig", args.seed)

    results_file = args.out / "closed_loop.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for row in args.rows:
        policy = prepare(row, args.dataset, args.out, args.steps, args.train_seed)
        key = row if args.train_seed is None else f"{row}-seed{args.train_seed}"
        run_dir = args.out / key / "run"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        counts, report = evaluate(run_dir, args.episodes, args.seed, args.episode_s, **policy)
        results[key] = {
            "outcomes": counts,
            "episodes": counts["left"] + counts["right"] + counts["miss"],
            "inference_ms": report.get("inference_ms", {}),
            "missed_ticks": report.get("missed_ticks"),
            "ticks": report.get("ticks"),
            "steps": args.steps,
            "dataset": str(args.dataset),
            "join_step": report.get("join_step", {}),
            "command_step_near_joins": report.get("command_step_near_joins", {}),
            "command_step_elsewhere": report.get("command_step_elsewhere", {}),
        }
        results_file.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"results: {results_file.resolve()}")


def print_table(results: dict) -> None:
    table = Table(title="Closed loop, emulated SO-100 two-target reach (same data, same training budget)")
    for col in (
        "policy",
        "episodes",
        "success",
        "left / right",
        "between",
        "other miss",
        "chunk p50 / p99 ms",
    ):
        table.add_column(col, justify="right")
    table.add_column("× drift time", justify="right")
    table.add_column("missed ticks", justify="right")
    table.add_column("join step p50 / max", justify="right")
    table.add_column("max step near joins / elsewhere", justify="right")
    drift_ms = results.get("drift", {}).get("inference_ms", {}).get("p50")
    for row, r in results.items():
        c, n, inf = r["outcomes"], max(r["episodes"], 1), r["inference_ms"]
        table.add_row(
            row,
            str(r["episodes"]),
            f"{(c['left'] + c['right']) / n:.0%}",
            f"{c['left']} / {c['right']}",
            f"{c['between'] / n:.0%}",
            str(c["miss"] - c["between"]),
            _pair(inf, "p50", "p99"),
            f"{inf['p50'] / drift_ms:.0f}×" if drift_ms and inf.get("p50") else "-",
            str(r["missed_ticks"]),
            _pair(r.get("join_step", {}), "p50", "max"),
            f"{_pair(r.get('command_step_near_joins', {}), 'max')} / "
            f"{_pair(r.get('command_step_elsewhere', {}), 'max')}",
        )
    Console().print(table)


def _pair(summary: dict, *keys: str) -> str:
    """Summary figures (degrees) as 'a / b', '-' where none were recorded."""
    values = [summary.get(k) for k in keys]
    return " / ".join("-" if v is None else f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
