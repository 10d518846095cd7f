"""Commitment benchmark: does a new chunk keep the mode of the plan the arm is executing?

On the toy tasks' decision points (both modes valid), the previous chunk is one mode's expert
chunk and its first d actions will already have been executed when the new chunk arrives.
Three ways to get the new chunk, each trained on the same batches:

* ``fresh``: today's drift: a fresh chunk, blind to the plan (the status quo the issue names).
* ``best_of_k``: the same checkpoint, K chunks in one batched call; keep the one whose first d
  actions are closest to the committed ones (backward coherence, Liu et al. 2408.17355).
* ``prefix``: the checkpoint trained with ``prefix_conditioning``, given the d committed actions.

Figures per row, over both modes: **keeps** (the new chunk is in the plan's mode), **between**,
the **join** step |new chunk's action − the plan's action| at the first tick the new chunk
drives (normalized units, L∞ over action dimensions: p50/p99/max), and ms per chunk at batch 1
(round-robin, one timer). Also the prefix model sampled with no prefix (d = 0): it must still
split between the modes. Usage::

    python -m benchmarks.commitment --seeds 0 1 2 --out outputs/bench/commitment.json
"""

import argparse
import json
import platform
from datetime import date
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from benchmarks.multimodal import make_batches
from lerobot_policy_drift.demos.toy_methods import train
from lerobot_policy_drift.demos.toy_tasks import EPISODE_LEN, eval_states, obstacle_path, score
from lerobot_policy_drift.drift.timing import round_robin

WAYS = ("fresh", "best_of_k", "prefix")


def mode_plan(task: str, states: np.ndarray, sign: float, steps: int) -> np.ndarray:
    """The expert's executed chunk [n, steps, 2] in mode ``sign`` from the decision points."""
    if task == "bimodal":
        plan = np.stack([states[:, 0], np.full(len(states), 0.5 * sign)], -1)
        return np.repeat(plan[:, None], steps, 1).astype(np.float32)
    progress = np.arange(1, steps + 1) / EPISODE_LEN["obstacle"]
    return np.repeat(obstacle_path(progress, sign)[None], len(states), 0).astype(np.float32)


def observation(states: np.ndarray) -> dict:
    hist = torch.from_numpy(states)[:, None].expand(-1, 2, -1)
    return {"observation.state": hist, "observation.environment_state": hist}


def new_chunk(way: str, policy, batch: dict, plan: torch.Tensor, d: int, k: int) -> torch.Tensor:
    """The executed chunk [n, n_action_steps, 2] that follows ``plan`` after ``d`` committed actions."""
    if way == "prefix":
        return policy.predict_action_chunk(batch, inference_delay=d, prev_chunk_left_over=plan)
    if way == "fresh":
        return policy.model.generate_actions(batch)
    n = plan.shape[0]
    many = policy.model.generate_actions({key: v.repeat_interleave(k, 0) for key, v in batch.items()})
    many = many.reshape(n, k, *many.shape[1:])
    distance = (many[:, :, :d] - plan[:, None, :d]).square().sum(dim=(2, 3))
    return many[torch.arange(n), distance.argmin(1)]


def join_figures(chunk: np.ndarray, plan: np.ndarray, d: int) -> dict:
    """|new − plan| at the first tick the new chunk drives (index d), L∞ over dimensions."""
    step = np.abs(chunk[:, d] - plan[:, d]).max(-1)
    return {
        "join_p50": float(np.median(step)),
        "join_p99": float(np.percentile(step, 99)),
        "join_max": float(step.max()),
    }


@torch.no_grad()
def evaluate(task: str, plain, prefixed, n: int, d: int, k: int, seed: int) -> dict:
    states = eval_states(task, n, np.random.default_rng(seed + 1))
    batch = observation(states)
    rows: dict = {}
    for way in WAYS:
        policy = prefixed if way == "prefix" else plain
        keeps, between, joins = [], [], []
        for sign in (1.0, -1.0):
            plan = mode_plan(task, states, sign, policy.config.n_action_steps)
            torch.manual_seed(seed)
            chunk = new_chunk(way, policy, batch, torch.from_numpy(plan), d, k).numpy()
            # The arm executes the plan's first d actions whatever the new chunk says.
            executed = np.concatenate([plan[:, :d], chunk[:, d:]], 1)
            s = score(task, states, executed)
            keeps.append(s.mode_split[0] if sign > 0 else s.mode_split[1])
            between.append(s.between)
            joins.append(join_figures(chunk, plan, d))
        rows[way] = {
            "keeps": float(np.mean(keeps)),
            "between": float(np.mean(between)),
            **{key: float(np.max([j[key] for j in joins])) for key in joins[0]},
        }
    torch.manual_seed(seed)
    rows["prefix_d0"] = score(task, states, prefixed.model.generate_actions(batch).numpy()).row()
    one = {key: v[:1] for key, v in batch.items()}
    plan = torch.from_numpy(mode_plan(task, states[:1], 1.0, plain.config.n_action_steps))
    timing = round_robin(
        {
            way: (lambda w=way: new_chunk(w, prefixed if w == "prefix" else plain, one, plan, d, k))
            for way in WAYS
        },
        30,
    )
    for way in WAYS:
        rows[way]["ms_per_chunk"] = timing[way]["p50_ms"]
    return rows


def run(tasks, seeds, steps, batch_size, episodes, n_eval, d, k, down_dims) -> dict:
    results: dict = {}
    for task in tasks:
        for seed in seeds:
            batches = make_batches(task, steps, batch_size, episodes, seed)
            plain = train("drift", batches, down_dims, seed=seed).policy
            prefixed = train("drift_prefix", batches, down_dims, seed=seed).policy
            rows = evaluate(task, plain, prefixed, n_eval, d, k, seed)
            results.setdefault(task, {})[str(seed)] = rows
            print(task, seed, json.dumps(rows), flush=True)
    return results


def print_table(results: dict, title: str) -> None:
    table = Table(title=title)
    for col in ("task", "seed", "way", "keeps", "between", "join p50/p99/max", "ms/chunk"):
        table.add_column(col, justify="right")
    for task, seeds in results.items():
        for seed, rows in seeds.items():
            for way in WAYS:
                r = rows[way]
                table.add_row(
                    task,
                    seed,
                    way,
                    f"{r['keeps']:.3f}",
                    f"{r['between']:.3f}",
                    f"{r['join_p50']:.3f}/{r['join_p99']:.3f}/{r['join_max']:.3f}",
                    f"{r['ms_per_chunk']:.2f}",
                )
            r = rows["prefix_d0"]
            table.add_row(
                task,
                seed,
                "prefix, d = 0",
                f"split {r['mode_plus']:.2f}/{r['mode_minus']:.2f}",
                f"{r['between']:.3f}",
                "",
                "",
            )
    Console().print(table)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=["bimodal", "obstacle"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--eval", type=int, default=1000, help="decision points per mode")
    parser.add_argument(
        "--committed", type=int, default=2, help="d: actions executed before the chunk arrives"
    )
    parser.add_argument("--k", type=int, default=8, help="candidates for best_of_k")
    parser.add_argument("--down-dims", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--out", type=Path, default=Path("outputs/commitment.json"))
    args = parser.parse_args(argv)
    results = run(
        args.tasks,
        args.seeds,
        args.steps,
        args.batch_size,
        args.episodes,
        args.eval,
        args.committed,
        args.k,
        tuple(args.down_dims),
    )
    meta = {
        "date": date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "args": {key: str(v) for key, v in vars(args).items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print_table(results, f"commitment (d = {args.committed}, K = {args.k}, {args.steps} steps)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
