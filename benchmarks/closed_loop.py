"""Closed loop on the emulated SO-100 reach tasks: DriftPolicy vs ACT, VQ-BeT, Diffusion Policy.

``--task two-targets`` (default) is the bimodal reach of ``make demo``: the mode choice and the
reach; ``--task one-target`` shows one target and asks for half the tolerance: precision alone
(``robots.tasks``). Each task needs its own ``--out`` and ``--dataset``.

Same dataset (``make demo``'s recording, or recorded here the same way), same ``lerobot-train``
recipe and step budget, same emulated arm, same runtime (``drift-run``, teleop-first, the policy
engaged per episode as in the demo). Rows:

- ``drift``: DriftPolicy, one network call per chunk, its ONNX Runtime bundle;
- ``dp100``: LeRobot's DiffusionPolicy (DDPM, 100 denoising steps), PyTorch (``--backend torch``);
- ``dp10``: the same DP checkpoint sampled with DDIM in 10 steps;
- ``dp-ddim100`` / ``dp-ddpm10``: the same checkpoint with DDIM in 100 steps (deterministic like
  dp10, as slow as dp100) and DDPM in 10 (stochastic like dp100, as fast as dp10): the 2 × 2 that
  says whether dp10 beats dp100 by its sampler or by its shorter chunk time;
- ``regression``: the drift network trained with G = 1 (every sample pulled to its expert chunk:
  regression to the conditional mean) and run with noise_scale 0 — deterministic;
- ``drift4``: DriftPolicy with LeRobot's full encoder (four ResNet stages, as DP has it);
- ``drift-prefix``: the drift recipe with ``--policy.prefix_conditioning=true``: each chunk is
  given the plan's remaining actions (up to 4) and continues them, no cross-fade at joins;
- ``drift-bok``: the ``drift`` row's checkpoint exported with ``--batch 8``: 8 candidates per call,
  drift-run keeps the one closest to the plan's remaining actions (best-of-K, no retraining);
- ``drift-noise05``: the ``drift`` row's checkpoint with its inference noise halved
  (``noise_scale`` 0.5, baked into the exported graph): inputs nearer the noise's centre, as
  GANs' truncation trick, may trade spread within a mode for precision (measured: it does
  not; centred noise lands between the modes, BENCHMARKS §7.2); needs no retraining;
- ``drift-ema``: the drift recipe evaluated with an exponential moving average of the weights
  (``--policy.use_ema=true``, Diffusion Policy's warm-up schedule, drift/ema.py);
- ``drift-g8``: the drift recipe with G = 8 generated chunks per observation in training (4 by
  default): a denser estimate of the drift field;
- ``drift-lr1e-3``: the drift recipe at learning rate 1e-3 instead of 3e-4 (same warm-up and cosine
  decay): does a larger step reach the plateau within the recipe's budget?
- ``drift-streaming``: the drift recipe read through LeRobot's streaming dataset with one loader
  worker (``make demo``'s data path, about 2× faster per step here): does it learn as well?
- ``drift-lean``: ``drift-streaming`` with one ResNet stage and one observation frame, which
  cut the training step's cost (the encoder's convolutions dominate it) by about 1.7×: does it
  learn as well per step, and better per minute of training?
- ``drift-lean-prefix``: ``drift-lean`` with prefix conditioning (as ``drift-prefix``): one
  frame cannot tell which way the arm is heading, the plan's remaining actions can;
- ``drift-gain10``, ``drift-lean-prefix-gain10``: ``drift`` and ``drift-lean-prefix`` with the
  noise skip's gain trained at 10× the learning rate (``--policy.noise_gain_lr_scale=10``,
  DriftConfig's default since BENCHMARKS §7.7; the other drift rows keep the 1× they were
  measured at): at 1× AdamW lets the gain fall by only ~0.3 in 2000 steps, and it falls that fast
  all run, so the U-Net is left cancelling noise; ``make demo`` trained the second until
  2026-12-04 ("``make demo``'s policy" below: that lean policy);
- ``drift-demo-lr1e-3``: ``make demo``'s policy (``drift-lean-prefix-gain10``) at learning rate
  1e-3: with the gain no longer rate-limited, does a larger step bring the demo's 2000 steps
  nearer the plateau (at 1× it did not, BENCHMARKS §7.2)?
- ``drift-demo-2frames``: ``make demo``'s policy with two observation frames (one ResNet stage
  still): the second frame shows which way the arm is moving; does it cut the stops between the
  targets by more than its cost in steps (a step 1.3× the lean one's, BENCHMARKS §7.6)?
- ``drift-demo-2stages``: ``make demo``'s policy with two ResNet stages (one frame still): an 8×6
  keypoint grid, as the recipe's; does it buy the recipe's precision (a step 1.2× the lean one's)?
- ``drift-lean-gain10``: ``make demo``'s policy without prefix conditioning (the recipe at 10× has
  none): at 10× the chunks hardly vary, so does continuing the plan still pay, or does it carry a
  chunk's error into the next?
- ``drift-demo-crop``: ``make demo``'s policy trained on random 42×56 crops of the 48×64 frames
  (centre crop when it runs; Diffusion Policy's 84-of-96 ratio): the demo's policy fits its 40
  layouts to a tip gap of ~0.01 but misses unseen ones by ~0.05 (BENCHMARKS §7.9), so does the
  shift augmentation that Diffusion Policy trains with make it generalize?
- ``drift-gain10-streaming``: the recipe's model (``drift-gain10``: two ResNet stages, two frames)
  read through the streaming data path ``make demo`` uses (about 2× faster per step than map-style
  loading, BENCHMARKS §7.3): the demo's lean policy stops near 90 % whatever lever it is given, the
  recipe reached 96.7 % on 60 demonstrations; at the stream's speed, does it fit the demo's budget?
  (It does: ``make demo`` trains it since BENCHMARKS §7.12, on 60 DART demonstrations.)
- ``drift-gain10-idp``: the recipe (``drift-gain10``) with Implicit Drifting Policy's
  expert-proximal probe at its 81× weight (``DriftConfig.expert_proximal_weight``, our reading of
  its Alg. 1): the generator is also trained to map a point near the expert chunk onto it, each
  coordinate weighted by how well the batch's most similar observations agree on it. IDP reports
  better precision within a mode; the recipe's misses that are not between the targets are
  imprecision, so does the probe remove them?
- ``drift-lean-hold``: the ``drift-lean`` checkpoint run with one noise draw held per engagement
  (``drift-run --noise per-engagement``) instead of a fresh draw per chunk: the draw that chose a
  target keeps choosing it, so fewer reaches should stop between the targets; needs no retraining;
- ``act``: LeRobot's ACT (one call per chunk, L1 regression with a CVAE), sized for this machine
  (``ACT_ARGS``), its recommended optimizer (AdamW, lr 1e-5 constant); ``act-te``: the same
  checkpoint with temporal ensembling (a chunk every policy step, averaged, coefficient 0.01);
- ``vqbet``: LeRobot's VQ-BeT (one call, discrete modes from a residual VQ), sized likewise;
  all run by drift-run's torch backend through LeRobot's processors;
- ``drift-fp16`` / ``drift-int8``: the ``drift`` checkpoint's FP16 graph / INT8-encoder graph
  (``drift-export --fp16`` / ``--int8``, run with ``--precision``): does lower precision cost
  closed-loop success?

Diffusion Policy keeps LeRobot's encoder (four ResNet stages); DriftPolicy uses two (its
``vision_backbone_stages`` option, the demo's recipe), so the drift/DP gap mixes the objective
with the encoder: ``drift4`` compares the objectives on the same encoder, ``regression`` on drift's.

Per row: success, left/right split, misses and how many stopped between the targets
(``robots.tasks.between``), the tip's final distance to the nearest target (p50 / p90, image
heights: the precision, whatever the tolerance), inference time per chunk, missed ticks, and the
chunk joins (the first new command's step from the old plan, and the largest command step within
3 ticks of a join against elsewhere). Results go to ``OUT/closed_loop.json``; artifacts of each row stay in
``OUT/<row>/`` and are reused. ``--train-seed N`` trains the rows with lerobot-train's ``--seed=N``
into ``OUT/<row>-seedN/`` (results keyed ``<row>-seedN``): one run of a recipe does not predict
the next, so compare rows over several training seeds. ``--eval-every N`` saves a checkpoint every
N training steps and evaluates each one (results keyed ``<row>[-seedN]@<step>``; the learning-rate
schedule spans the whole ``--steps``): the training curve, to say where success plateaus.
``--eval-steps`` adds single steps, e.g. the step count that costs a policy the same wall-clock
training time as another's budget (exact for a constant learning rate, as ACT's). A finished run
with a constant learning rate (ACT) given a larger ``--steps`` is trained further from its last
checkpoint (LeRobot's ``--resume``) rather than again: the curve goes on where it stopped.
``--inference-floor-ms N`` runs the rows with ``drift-run --inference-floor-ms N`` (no chunk
returns sooner; results keyed ``<row>-floorNms``): a fast row at a slow row's chunk time, e.g.
``dp10`` at ``dp100``'s, says how much of a gap is the chunk time and how much the sampler.
"""

import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from lerobot_policy_drift.demos.arm import (
    BATCH_SIZE,
    DRIFT_ARGS,
    GAIN_ARGS,
    LEAN_ARGS,
    PREFIX_ARGS,
    REPO_ID,
    TRAIN_ARGS,
    evaluate,
    export,
    record,
)
from lerobot_policy_drift.demos.emulated_policy import config_variant
from lerobot_policy_drift.demos.folders import claim_folder
from lerobot_policy_drift.demos.train import STREAMING_ARGS, train_policy, training_facts
from lerobot_policy_drift.robots.tasks import TASKS

DP_ARGS = (
    "--policy.crop_shape=null",  # the 64×48 camera is smaller than DP's default 84×84 crop
    "--policy.pretrained_backbone_weights=null",  # offline: no ImageNet download
    "--policy.use_group_norm=true",
    "--policy.num_inference_steps=100",
)
# ACT sized for this machine (LeRobot's default: 512-wide, 3200 feed-forward, 100-step chunks); the
# chunk spans drift's horizon and plays drift's n_action_steps. No ImageNet download (offline).
ACT_ARGS = (
    "--policy.chunk_size=16",
    "--policy.n_action_steps=8",
    "--policy.dim_model=256",
    "--policy.dim_feedforward=1024",
    "--policy.pretrained_backbone_weights=null",
)
# VQ-BeT sized the same way: drift's observation steps and chunk, a 4-layer 256-wide GPT, and the
# residual VQ trained for the first fifth of the budget (LeRobot's default 20,000 exceeds it).
VQBET_ARGS = (
    "--policy.n_obs_steps=2",
    "--policy.action_chunk_size=8",
    "--policy.crop_shape=null",
    "--policy.pretrained_backbone_weights=null",
    "--policy.use_group_norm=true",
    "--policy.spatial_softmax_num_keypoints=16",
    "--policy.gpt_n_layer=4",
    "--policy.gpt_hidden_dim=256",
    "--policy.gpt_input_dim=256",
    "--policy.gpt_output_dim=256",
)


# The rows measured before the noise skip's gain had its own rate (BENCHMARKS §7–§9) keep the rate
# they were measured at; a ``-gain10`` row trains at DriftConfig's default since §7.7.
GAIN_1X = ("--policy.noise_gain_lr_scale=1",)
# make demo's lean policy from 2026-12-01 to 2026-12-04 (the demo trains drift-gain10-streaming since)
DEMO_POLICY = (*LEAN_ARGS, *PREFIX_ARGS, *STREAMING_ARGS, *GAIN_ARGS)
# Drift-network rows: the recipe's extra lerobot-train arguments (after GAIN_1X: the last wins).
DRIFT_ROWS = {
    "drift": DRIFT_ARGS,
    "regression": (*DRIFT_ARGS, "--policy.num_samples_per_obs=1", "--policy.noise_scale=0"),
    "drift4": (),  # LeRobot's full 4-stage encoder, as Diffusion Policy has it
    "drift-prefix": (*DRIFT_ARGS, *PREFIX_ARGS),
    "drift-ema": (*DRIFT_ARGS, "--policy.use_ema=true"),
    "drift-g8": (*DRIFT_ARGS, "--policy.num_samples_per_obs=8"),
    "drift-lr1e-3": (*DRIFT_ARGS, "--policy.optimizer_lr=1e-3"),  # the last --policy.optimizer_lr wins
    "drift-streaming": (*DRIFT_ARGS, *STREAMING_ARGS),
    "drift-lean": (*LEAN_ARGS, *STREAMING_ARGS),  # one ResNet stage, one observation frame
    "drift-lean-prefix": (*LEAN_ARGS, *PREFIX_ARGS, *STREAMING_ARGS),
    "drift-gain10": (*DRIFT_ARGS, *GAIN_ARGS),
    "drift-lean-prefix-gain10": DEMO_POLICY,
    "drift-demo-lr1e-3": (*DEMO_POLICY, "--policy.optimizer_lr=1e-3"),  # the last lr wins
    "drift-demo-2frames": (*DEMO_POLICY, "--policy.n_obs_steps=2"),  # the last n_obs_steps wins
    "drift-demo-2stages": (*DEMO_POLICY, *DRIFT_ARGS),  # the last vision_backbone_stages wins
    "drift-lean-gain10": (*LEAN_ARGS, *STREAMING_ARGS, *GAIN_ARGS),  # make demo's, no prefix
    "drift-demo-crop": (*DEMO_POLICY, "--policy.crop_shape=[42,56]"),  # random 42×56 of 48×64
    "drift-gain10-streaming": (*DRIFT_ARGS, *STREAMING_ARGS, *GAIN_ARGS),  # the recipe, demo's data path
    "drift-gain10-idp": (*DRIFT_ARGS, *GAIN_ARGS, "--policy.expert_proximal_weight=81"),
}


def training(row: str, steps: int) -> tuple[str, str, tuple[str, ...]]:
    """(policy type, run folder name, lerobot-train arguments) of the training a row uses; rows
    that run another graph or configuration of a checkpoint share its training."""
    if row in PRECISION_ROWS or row in NOISE_ROWS or row == "drift-bok":
        return "drift", "drift", (*TRAIN_ARGS, *GAIN_1X, *DRIFT_ARGS)
    if row in HOLD_ROWS:
        return training(HOLD_ROWS[row], steps)
    if row in DRIFT_ROWS:
        return "drift", row, (*TRAIN_ARGS, *GAIN_1X, *DRIFT_ROWS[row])
    if row in ("act", "act-te"):
        return "act", "act", ACT_ARGS
    if row == "vqbet":
        return "vqbet", "vqbet", (*VQBET_ARGS, f"--policy.n_vqvae_training_steps={steps // 5}")
    return "diffusion", "dp", (*TRAIN_ARGS, *DP_ARGS)


def train_row(
    row: str, dataset: Path, out: Path, steps: int, train_seed: int | None, save_every: int | None
) -> Path:
    """Train (or reuse) the row's policy; its run folder (checkpoints every ``save_every`` steps)."""
    policy_type, name, args = training(row, steps)
    tag = "" if train_seed is None else f"-seed{train_seed}"
    seed_args = () if train_seed is None else (f"--seed={train_seed}",)
    run = out / f"{name}{tag}"
    train_policy(
        policy_type, dataset, REPO_ID, run, steps, BATCH_SIZE, *args, *seed_args, save_every=save_every
    )
    return run


def runnable(row: str, ckpt: Path, dataset: Path) -> dict:
    """The RunConfig fields that run ``row`` from checkpoint ``ckpt``: its bundle (exported next to
    it, reused when valid) or the checkpoint (a config variant of it) for the torch backend."""
    if row == "drift-bok":
        bundle = ckpt.parent / f"bundle_k{CANDIDATES}"
        export(ckpt, dataset, bundle, batch=CANDIDATES)
        return {"bundle": bundle}
    if row in NOISE_ROWS:
        scale = NOISE_ROWS[row]
        variant = config_variant(ckpt, ckpt.parent / f"pretrained_model_noise{scale}", noise_scale=scale)
        export(variant, dataset, ckpt.parent / f"bundle_noise{scale}")
        return {"bundle": ckpt.parent / f"bundle_noise{scale}"}
    if row in PRECISION_ROWS:
        precision = PRECISION_ROWS[row]
        export(ckpt, dataset, ckpt.parent / f"bundle_{precision}", **{precision: True})
        return {"bundle": ckpt.parent / f"bundle_{precision}", "precision": precision}
    if row in DRIFT_ROWS or row in HOLD_ROWS:
        export(ckpt, dataset, ckpt.parent / "bundle")
        held = {"noise": "per-engagement"} if row in HOLD_ROWS else {}
        return {"bundle": ckpt.parent / "bundle", **held}
    if row == "act-te":
        variant = config_variant(
            ckpt, ckpt.parent / "pretrained_model_te", temporal_ensemble_coeff=0.01, n_action_steps=1
        )
        return {"backend": "torch", "policy": variant}
    if row in DP_SAMPLERS:
        scheduler, denoising_steps = DP_SAMPLERS[row]
        variant = config_variant(
            ckpt,
            ckpt.parent / f"pretrained_model_{scheduler.lower()}{denoising_steps}",
            noise_scheduler_type=scheduler,
            num_inference_steps=denoising_steps,
        )
        return {"backend": "torch", "policy": variant}
    return {"backend": "torch", "policy": ckpt}


def eval_steps(steps: int, every: int | None, at: list[int] | None) -> list[int] | None:
    """The training steps whose checkpoints are evaluated (``--eval-every`` / ``--eval-steps``;
    None: only the last one). Checkpoints are saved every ``math.gcd`` of them."""
    chosen = sorted(set(at or ()) | set(range(every, steps + 1, every) if every else ()))
    if not all(0 < step <= steps for step in chosen):
        raise SystemExit(f"--eval-steps {chosen}: each must be within 1..--steps ({steps})")
    return chosen or None


def checkpoints(run: Path, steps: list[int] | None) -> dict[str, Path]:
    """Result-key suffix → checkpoint to evaluate: the last one, or the one at each of ``steps``
    (``@<step>``); a run trained without those checkpoints is an error that says what to do."""
    if steps is None:
        return {"": run / "checkpoints" / "last" / "pretrained_model"}
    found = {}
    for step in steps:
        ckpt = run / "checkpoints" / f"{step:06d}" / "pretrained_model"
        if not ckpt.is_dir():
            raise SystemExit(
                f"{run} has no checkpoint at step {step}: it was trained without a checkpoint "
                f"every {math.gcd(*steps)} steps. Move it away (or use another --out) to train it "
                "again with those checkpoints."
            )
        found[f"@{step}"] = ckpt
    return found


def result_key(row: str, train_seed: int | None, suffix: str, floor_ms: float = 0.0) -> str:
    """``<row>[-floor<N>ms][-seed<S>][@<step>]``: the floor belongs to the row, so a floored row's
    seeds are summarized together and apart from the row run at its own speed."""
    name = row + (f"-floor{floor_ms:g}ms" if floor_ms else "")
    return (name if train_seed is None else f"{name}-seed{train_seed}") + suffix


# The DP checkpoint sampled otherwise than it was trained (DDPM, 100 steps): scheduler, steps.
DP_SAMPLERS = {"dp10": ("DDIM", 10), "dp-ddim100": ("DDIM", 100), "dp-ddpm10": ("DDPM", 10)}
PRECISION_ROWS = {"drift-fp16": "fp16", "drift-int8": "int8"}
NOISE_ROWS = {"drift-noise05": 0.5}  # the drift checkpoint, its inference noise scaled
HOLD_ROWS = {"drift-lean-hold": "drift-lean"}  # a row's checkpoint, one noise draw per engagement
CANDIDATES = 8  # drift-bok: chunks per call
ROWS = (
    "drift",
    "dp100",
    *DP_SAMPLERS,
    "act",
    "act-te",
    "vqbet",
    "regression",
    "drift4",
    "drift-prefix",
    "drift-bok",
    "drift-noise05",
    "drift-ema",
    "drift-g8",
    "drift-lr1e-3",
    "drift-streaming",
    "drift-lean",
    "drift-lean-prefix",
    "drift-gain10",
    "drift-lean-prefix-gain10",
    "drift-demo-lr1e-3",
    "drift-demo-2frames",
    "drift-demo-2stages",
    "drift-lean-gain10",
    "drift-demo-crop",
    "drift-gain10-streaming",
    "drift-gain10-idp",
    *HOLD_ROWS,
    *PRECISION_ROWS,
)


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
    parser.add_argument(
        "--task",
        choices=TASKS,
        default="two-targets",
        help="two-targets (mode choice and reach) or one-target (precision: one target, half the "
        "tolerance); give each task its own --out and --dataset",
    )
    parser.add_argument("--train-seed", type=int, help="lerobot-train --seed (default: its own)")
    parser.add_argument(
        "--command-noise",
        type=float,
        default=0.0,
        help="radians: record DART demonstrations (demos.arm.record); give a new --dataset, since an "
        "existing one is reused as it is",
    )
    parser.add_argument(
        "--eval-every",
        type=int,
        help="save a checkpoint every N steps and evaluate each (results keyed <row>@<step>): "
        "where closed-loop success stops improving",
    )
    parser.add_argument(
        "--eval-steps",
        type=int,
        nargs="+",
        help="also evaluate the checkpoints at these steps (e.g. an equal wall-clock budget; "
        "saved every gcd of all evaluated steps)",
    )
    parser.add_argument(
        "--inference-floor-ms",
        type=float,
        default=0.0,
        help="run every row with drift-run --inference-floor-ms (results keyed <row>-floor<N>ms): "
        "a row at another's chunk time, e.g. dp10 at dp100's, to tell the chunk time from the sampler",
    )
    args = parser.parse_args(argv)
    claim_folder(
        args.out,
        "closed_loop",
        "Wait for it to finish (its rows are added to the same closed_loop.json), or give another --out.",
    )
    task = TASKS[args.task]
    record(args.dataset, args.demos, args.out / "record_rig", args.seed, task, args.command_noise)

    results_file = args.out / "closed_loop.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for row in args.rows:
        evaluated = eval_steps(args.steps, args.eval_every, args.eval_steps)
        save_every = math.gcd(*evaluated) if evaluated else None
        run = train_row(row, args.dataset, args.out, args.steps, args.train_seed, save_every)
        for suffix, ckpt in checkpoints(run, evaluated).items():
            policy = runnable(row, ckpt, args.dataset)
            if args.inference_floor_ms:
                policy["inference_floor_ms"] = args.inference_floor_ms
            key = result_key(row, args.train_seed, suffix, args.inference_floor_ms)
            run_dir = args.out / key / "run"
            if run_dir.exists():
                shutil.rmtree(run_dir)
            run_dir.mkdir(parents=True)
            counts, gaps, report = evaluate(run_dir, args.episodes, args.seed, args.episode_s, task, **policy)
            results[key] = {
                "task": task.name,
                "outcomes": counts,
                "tip_gap": {f"p{q}": float(np.percentile(gaps, q)) for q in (50, 90)} if gaps else {},
                "tip_gaps": [round(g, 4) for g in gaps],
                "episodes": counts["left"] + counts["right"] + counts["miss"],
                "inference_ms": report.get("inference_ms", {}),
                "missed_ticks": report.get("missed_ticks"),
                "ticks": report.get("ticks"),
                "steps": int(suffix[1:]) if suffix else args.steps,
                "training_steps": args.steps,
                "inference_floor_ms": args.inference_floor_ms,
                **training_facts(ckpt),
                "dataset": str(args.dataset),
                "join_step": report.get("join_step", {}),
                "command_step_near_joins": report.get("command_step_near_joins", {}),
                "command_step_elsewhere": report.get("command_step_elsewhere", {}),
                "command_jerk_near_joins": report.get("command_jerk_near_joins", {}),
                "command_jerk_within_chunks": report.get("command_jerk_within_chunks", {}),
            }
            results_file.write_text(json.dumps(results, indent=2))
    print_table(results)
    print_seed_summary(results)
    print(f"results: {results_file.resolve()}")


def print_table(results: dict) -> None:
    table = Table(title="Closed loop, emulated SO-100 reach (same data, same training budget)")
    for col in (
        "policy",
        "episodes",
        "success",
        "left / right",
        "between",
        "other miss",
        "tip gap p50 / p90",
        "chunk p50 / p99 ms",
    ):
        table.add_column(col, justify="right")
    table.add_column("× drift time", justify="right")
    table.add_column("params", justify="right")
    table.add_column("train s/step", justify="right")
    table.add_column("missed ticks", justify="right")
    table.add_column("join step p50 / max", justify="right")
    table.add_column("max step near joins / elsewhere", justify="right")
    table.add_column("jerk p99 / max near joins", justify="right")
    table.add_column("within chunks", justify="right")
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
            _pair(r.get("tip_gap", {}), "p50", "p90", digits=3),
            _pair(inf, "p50", "p99"),
            f"{inf['p50'] / drift_ms:.0f}×" if drift_ms and inf.get("p50") else "-",
            f"{r['params'] / 1e6:.1f} M" if "params" in r else "-",
            f"{r['train_s_per_step']:.2f}" if "train_s_per_step" in r else "-",
            str(r["missed_ticks"]),
            _pair(r.get("join_step", {}), "p50", "max"),
            f"{_pair(r.get('command_step_near_joins', {}), 'max')} / "
            f"{_pair(r.get('command_step_elsewhere', {}), 'max')}",
            _pair(r.get("command_jerk_near_joins", {}), "p99", "max"),
            _pair(r.get("command_jerk_within_chunks", {}), "p99", "max"),
        )
    Console().print(table)


def seed_summary(results: dict) -> dict[str, dict]:
    """Rows run with ``--train-seed``: per row (and per checkpoint step, ``<row>@<step>``), success
    and between (fractions) of every seed, and their mean and standard deviation across seeds
    (sample std, ddof 1)."""
    rows: dict[str, dict] = {}
    for key, r in results.items():
        row, sep, seed = key.rpartition("-seed")
        seed, at, step = seed.partition("@")
        if not sep or not seed.isdigit():
            continue
        c, n = r["outcomes"], max(r["episodes"], 1)
        entry = rows.setdefault(row + at + step, {"seeds": [], "episodes": [], "success": [], "between": []})
        entry["seeds"].append(int(seed))
        entry["episodes"].append(r["episodes"])
        entry["success"].append((c["left"] + c["right"]) / n)
        entry["between"].append(c["between"] / n)
    for entry in rows.values():
        for name in ("success", "between"):
            values = np.array(entry[name])
            entry[f"{name}_mean"] = float(values.mean())
            entry[f"{name}_std"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return rows


def print_seed_summary(results: dict) -> None:
    summary = seed_summary(results)
    if not summary:
        return
    table = Table(title="Across training seeds (the same layouts for every seed)")
    for col in (
        "policy",
        "seeds",
        "episodes per seed",
        "success per seed",
        "success mean ± std",
        "between per seed",
        "between mean",
    ):
        table.add_column(col, justify="right")
    for row, s in summary.items():
        table.add_row(
            row,
            " ".join(map(str, s["seeds"])),
            " ".join(map(str, s["episodes"])),
            " / ".join(f"{v:.0%}" for v in s["success"]),
            f"{s['success_mean']:.1%}" + ("" if np.isnan(s["success_std"]) else f" ± {s['success_std']:.1%}"),
            " / ".join(f"{v:.0%}" for v in s["between"]),
            f"{s['between_mean']:.1%}",
        )
    Console().print(table)


def _pair(summary: dict, *keys: str, digits: int = 2) -> str:
    """Summary figures as 'a / b', '-' where none were recorded."""
    values = [summary.get(k) for k in keys]
    return " / ".join("-" if v is None else f"{v:.{digits}f}" for v in values)


if __name__ == "__main__":
    main()
