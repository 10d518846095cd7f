"""Multimodal benchmark: does one network call keep the modes apart as well as 100 denoising steps?

Every method trains on the same windows, the same batches in the same order, for the same
number of steps, then samples chunks at the tasks' decision points. Prints a table and writes
JSON. Usage::

    python -m benchmarks.multimodal --steps 3000 --out outputs/multimodal.json
"""

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from lerobot_policy_drift.demos.toy_methods import METHODS, actor, time_per_chunk, train
from lerobot_policy_drift.demos.toy_tasks import TASKS, eval_states, score, training_windows


def make_batches(task: str, steps: int, batch_size: int, n_episodes: int, seed: int) -> list[dict]:
    """Shuffled minibatches of the task's windows; both inputs carry the state (see methods.toy_features)."""
    states, actions = training_windows(task, n_episodes, horizon=16, n_obs_steps=2, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(steps):
        idx = torch.randint(len(states), (batch_size,), generator=gen)
        s = states[idx]
        batches.append(
            {
                "observation.state": s,
                "observation.environment_state": s,
                "action": actions[idx],
                "action_is_pad": torch.zeros(batch_size, actions.shape[1], dtype=torch.bool),
            }
        )
    return batches


def evaluate(trained, task: str, n: int, seed: int) -> dict:
    states = eval_states(task, n, np.random.default_rng(seed + 1))
    hist = torch.from_numpy(states)[:, None].expand(-1, 2, -1)
    batch = {"observation.state": hist, "observation.environment_state": hist}
    torch.manual_seed(seed)
    with torch.no_grad():
        chunks = trained.act(batch).numpy()
    row = score(task, states, chunks).row()
    row["ms_per_chunk"] = 1000 * time_per_chunk(trained, batch)
    row["nfe"] = trained.nfe
    return row


def run(tasks, methods, steps, batch_size, n_episodes, n_eval, down_dims, seed) -> dict:
    results: dict = {}
    for task in tasks:
        batches = make_batches(task, steps, batch_size, n_episodes, seed)
        trained_dp = None
        for method in methods:
            t0 = time.perf_counter()
            if method in ("dp100", "dp10") and trained_dp is not None:
                trained = actor(method, trained_dp.policy)  # one DP model, two samplers
            else:
                trained = train(method, batches, down_dims, seed=seed)
                if method.startswith("dp"):
                    trained_dp = trained
            row = evaluate(trained, task, n_eval, seed)
            row["train_s"] = time.perf_counter() - t0
            results.setdefault(task, {})[method] = row
            print(f"{task:9s} {method:12s} " + " ".join(f"{k}={v:.3g}" for k, v in row.items()), flush=True)
    return results


def print_table(results: dict, title: str) -> None:
    table = Table(title=title)
    for col in ("task", "method", "NFE", "precision", "balance", "between", "mode +/−", "ms/chunk"):
        table.add_column(col, justify="right")
    for task, rows in results.items():
        for method, r in rows.items():
            table.add_row(
                task,
                method,
                str(r["nfe"]),
                f"{r['precision']:.3f}",
                f"{r['balance']:.2f}",
                f"{r['between']:.3f}",
                f"{r['mode_plus']:.2f}/{r['mode_minus']:.2f}",
                f"{r['ms_per_chunk']:.2f}",
            )
    Console().print(table)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--eval", type=int, default=1000, help="chunks sampled per method and task")
    parser.add_argument("--down-dims", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("outputs/multimodal.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = run(
        args.tasks,
        args.methods,
        args.steps,
        args.batch_size,
        args.episodes,
        args.eval,
        tuple(args.down_dims),
        args.seed,
    )
    meta = {
        "date": date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print_table(
        results, f"multimodal benchmark ({args.steps} steps, batch {args.batch_size}, U-Net {args.down_dims})"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
