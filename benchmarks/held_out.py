"""Where a reach policy's precision is lost: on the layouts it trained on, or on layouts it never saw.

Offline, no arm. For every episode of a recording of the reach task and each frame offset ``t``,
the trained policy (drift, or LeRobot's ACT) predicts a chunk from the recorded observation (its
frame history as the dataset gives it); the last action of it the runtime plays (``played``) is
compared with the action the operator recorded for that step, both turned into gripper-tip
positions through the arm's kinematics (``robots.kinematics``; image heights, as the closed loop's tip gap). ``--draws`` noise draws per
frame split the error into bias (the draws' mean tip against the goal) and spread (about their
mean). The first ``--train-episodes`` episodes must be the ones the checkpoint trained on (e.g. a
longer recording with the demo's seed: its first 40 layouts are the demo's; 0 for a recording with
another seed) and the rest unseen: a policy that fits its own layouts but not unseen ones has a
generalization gap, which more steps will not close (more layouts or augmentation may). Early offsets include the choice of target
(a chunk heading for the other target is a large error), later ones only how precisely it arrives.

``--displace``: the same policy on each episode's last frame (the arm holding at its goal) redrawn
with the arm displaced (``DISPLACEMENTS``: shoulder or elbow turned by 0.2–0.25 rad, about 0.08
image heights at the tip, as far as the closed loop's near misses), the targets redrawn where the
recording put them (``demos.arm.demonstrations`` with the recording's ``--seed``): the tip's gap
to the goal target before, and at the chunk's last action. A policy that brings the arm back
corrects; one that holds it where it stands copies the state it sees (a demonstrator who never
errs never shows a correction; ``demos.arm.record``'s ``command_noise`` does).

Usage::

    python -m benchmarks.held_out --ckpt RUN/checkpoints/last/pretrained_model \\
        --dataset outputs/cl_d60/dataset --train-episodes 40 [--displace --seed 0]
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from lerobot_policy_drift.robots.kinematics import tip
from lerobot_policy_drift.robots.tasks import TOLERANCE

OFFSETS = (0, 4, 8, 12, 16, 24)  # frames into the episode (10 fps: the reach takes 15, then holds)
# (shoulder_lift, elbow_flex) turned by these radians from the held pose: ~0.08 at the tip
DISPLACEMENTS = ((0.2, 0.0), (-0.2, 0.0), (0.0, 0.25), (0.0, -0.25))
# policies whose ``predict_action_chunk`` takes one observation as given (VQ-BeT's and Diffusion
# Policy's read the frame queues ``select_action`` fills)
POLICY_TYPES = ("drift", "act")


def played(config) -> int:
    """Index, in a ``predict_action_chunk`` chunk (it starts at the current step), of the last
    action the runtime plays before the next call: ACT predicts ``chunk_size`` and plays
    ``n_action_steps``; drift returns exactly the played ones."""
    return config.n_action_steps - 1


def tip_of(action: np.ndarray, names: list[str]) -> tuple[float, float]:
    """The tip an action (LeRobot's SO-100 degrees, ``<joint>.pos``) puts the arm's tip at."""
    return tip(joint_angles_of(action, names))


def split_error(tips: np.ndarray, goal: np.ndarray, tolerance: float = TOLERANCE) -> dict[str, float]:
    """Tip error of ``tips`` [draws, 2] against ``goal`` [2]: its mean, the bias (the draws' mean
    tip's distance to the goal), the spread (RMS distance of the draws about their mean) and the
    share of draws within ``tolerance``."""
    errors = np.linalg.norm(tips - goal, axis=1)
    centre = tips.mean(axis=0)
    return {
        "error": float(errors.mean()),
        "bias": float(np.linalg.norm(centre - goal)),
        "spread": float(np.sqrt(np.square(tips - centre).sum(axis=1).mean())),
        "within": float((errors <= tolerance).mean()),
    }


def measure(ckpt: Path, dataset: Path, train_episodes: int, draws: int, offsets=OFFSETS) -> dict:
    """{split: {offset: [split_error per episode]}} for the trained and the unseen episodes."""
    import torch
    from lerobot.datasets.factory import resolve_delta_timestamps
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

    from lerobot_policy_drift.export.checkpoint import load_checkpoint

    loaded = load_checkpoint(ckpt, dataset_root=dataset, policy_types=POLICY_TYPES)
    policy, config = loaded.policy, loaded.policy.config
    meta = LeRobotDatasetMetadata(loaded.dataset_repo_id, root=dataset)
    data = LeRobotDataset(
        loaded.dataset_repo_id, root=dataset, delta_timestamps=resolve_delta_timestamps(config, meta)
    )
    if train_episodes >= meta.total_episodes:
        raise SystemExit(
            f"held_out: {dataset} has {meta.total_episodes} episodes, all within --train-episodes "
            f"{train_episodes}; record a longer one (same seed) so that some layouts are unseen."
        )
    names = meta.features["action"]["names"]
    last = played(config)
    goal_at = config.action_delta_indices.index(last)  # that action's place in the frame's "action"
    starts = np.asarray(data.meta.episodes["dataset_from_index"])
    ends = np.asarray(data.meta.episodes["dataset_to_index"])
    torch.manual_seed(0)
    out = {"trained": {t: [] for t in offsets}, "unseen": {t: [] for t in offsets}}
    for episode, (start, end) in enumerate(zip(starts, ends, strict=True)):
        split = "trained" if episode < train_episodes else "unseen"
        for t in offsets:
            item = data[int(min(start + t, end - 1))]
            observation = {
                k: v.unsqueeze(0).expand(draws, *v.shape)
                for k, v in item.items()
                if k.startswith("observation.") and isinstance(v, torch.Tensor)
            }
            with torch.no_grad():
                chunk = loaded.postprocessor(policy.predict_action_chunk(loaded.preprocessor(observation)))
            tips = np.array([tip_of(a, names) for a in chunk[:, last].numpy()])
            goal = np.array(tip_of(item["action"][goal_at].numpy(), names))
            out[split][t].append(split_error(tips, goal))
    return out


def joint_angles_of(state: np.ndarray, names: list[str]) -> dict[str, float]:
    """Joint angles (radians; the gripper's opening 0..1) from LeRobot's SO-100 state (degrees;
    the gripper 0..100), as the emulated camera draws them."""
    return {
        n.removesuffix(".pos"): float(v) / 100 if n == "gripper.pos" else math.radians(float(v))
        for n, v in zip(names, state, strict=True)
    }


def displaced(
    ckpt: Path, dataset: Path, train_episodes: int, draws: int, seed: int, task_name: str = "two-targets"
) -> dict:
    """{split: {displacement: [(gap before, mean gap at the chunk's end, share within tolerance)]}}
    over every episode's last frame redrawn with the arm displaced."""
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from lerobot_policy_drift.demos.arm import demonstrations
    from lerobot_policy_drift.export.checkpoint import load_checkpoint
    from lerobot_policy_drift.robots.scene import render
    from lerobot_policy_drift.robots.tasks import TASKS, scene_objects

    loaded = load_checkpoint(ckpt, dataset_root=dataset, policy_types=POLICY_TYPES)
    policy = loaded.policy
    data = LeRobotDataset(loaded.dataset_repo_id, root=dataset)
    names = data.meta.features["action"]["names"]
    cameras = [k for k, f in data.meta.features.items() if f["dtype"] in ("image", "video")]
    ends = np.asarray(data.meta.episodes["dataset_to_index"])
    task = TASKS[task_name]
    torch.manual_seed(0)
    out = {"trained": {d: [] for d in DISPLACEMENTS}, "unseen": {d: [] for d in DISPLACEMENTS}}
    for episode, (end, (targets, goal)) in enumerate(zip(ends, demonstrations(seed, task), strict=False)):
        item = data[int(end) - 1]
        state = item["observation.state"].numpy().astype(np.float64)
        for lift, elbow in DISPLACEMENTS:
            moved = state.copy()
            moved[names.index("shoulder_lift.pos")] += math.degrees(lift)
            moved[names.index("elbow_flex.pos")] += math.degrees(elbow)
            angles = joint_angles_of(moved, names)
            observation = {"observation.state": torch.tensor(moved, dtype=torch.float32).expand(draws, -1)}
            for key in cameras:
                _, height, width = item[key].shape
                image = render(angles, width, height, tuple(scene_objects(targets)))
                pixels = torch.tensor(image.transpose(2, 0, 1) / 255.0, dtype=torch.float32)
                observation[key] = pixels.expand(draws, *pixels.shape)
            policy.reset()
            with torch.no_grad():
                chunk = loaded.postprocessor(policy.predict_action_chunk(loaded.preprocessor(observation)))
            before = math.dist(tip(angles), (goal.x, goal.y))
            arrivals = chunk[:, played(policy.config)].numpy()  # one per draw
            after = np.array([math.dist(tip_of(a, names), (goal.x, goal.y)) for a in arrivals])
            split = "trained" if episode < train_episodes else "unseen"
            out[split][(lift, elbow)].append(
                (before, float(after.mean()), float((after <= task.tolerance).mean()))
            )
    return out


def print_displaced(results: dict, title: str) -> dict:
    """Print the displacement table; returns it as {split: {"lift,elbow": figures}}."""
    out = Table(title=title)
    for column in ("episodes", "displaced (lift, elbow rad)", "gap before", "gap at chunk end", "within"):
        out.add_column(column, justify="right")
    table = {}
    for split, by in results.items():
        for (lift, elbow), rows in by.items():
            if not rows:
                continue
            r = np.array(rows)
            figures = {
                "before": float(r[:, 0].mean()),
                "after": float(r[:, 1].mean()),
                "within": float(r[:, 2].mean()),
            }
            table.setdefault(split, {})[f"{lift:+.2f},{elbow:+.2f}"] = figures
            out.add_row(
                f"{split} ({len(rows)})",
                f"{lift:+.2f}, {elbow:+.2f}",
                f"{figures['before']:.3f}",
                f"{figures['after']:.3f}",
                f"{figures['within']:.0%}",
            )
    Console().print(out)
    return table


def summary(results: dict) -> dict:
    """{split: {offset: episodes, mean error, p90 error, mean bias, mean spread, share within}}."""
    table = {}
    for split, by_offset in results.items():
        if not any(by_offset.values()):
            continue  # --train-episodes 0: a recording the checkpoint never saw
        table[split] = {}
        for t, rows in by_offset.items():
            error = np.array([r["error"] for r in rows])
            table[split][t] = {
                "episodes": len(rows),
                "error": float(error.mean()),
                "error_p90": float(np.percentile(error, 90)),
                "bias": float(np.mean([r["bias"] for r in rows])),
                "spread": float(np.mean([r["spread"] for r in rows])),
                "within": float(np.mean([r["within"] for r in rows])),
            }
    return table


def print_summary(table: dict, title: str) -> None:
    out = Table(title=title)
    for column in ("episodes", "frame", "tip error mean / p90", "bias", "spread", f"within {TOLERANCE}"):
        out.add_column(column, justify="right")
    for split, by_offset in table.items():
        for t, row in by_offset.items():
            out.add_row(
                f"{split} ({row['episodes']})",
                str(t),
                f"{row['error']:.3f} / {row['error_p90']:.3f}",
                f"{row['bias']:.3f}",
                f"{row['spread']:.3f}",
                f"{row['within']:.0%}",
            )
    Console().print(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", type=Path, required=True, help="a pretrained_model/ folder")
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument(
        "--train-episodes", type=int, required=True, help="its first N episodes were trained on (0: none)"
    )
    parser.add_argument("--draws", type=int, default=8, help="noise draws per frame")
    parser.add_argument("--displace", action="store_true", help="also: the arm displaced off its goal")
    parser.add_argument(
        "--seed", type=int, default=0, help="the recording's seed (--displace redraws its layouts)"
    )
    parser.add_argument("--task", choices=("two-targets", "one-target"), default="two-targets")
    parser.add_argument("--out", type=Path, help="write the summary here as JSON")
    args = parser.parse_args(argv)
    from lerobot_policy_drift.export.checkpoint import ExportError

    try:
        table = summary(measure(args.ckpt, args.dataset, args.train_episodes, args.draws))
    except ExportError as err:
        raise SystemExit(f"held_out: {err}") from None
    print_summary(table, f"{args.ckpt}: tip error of the chunk's last action (image heights)")
    result = {"ckpt": str(args.ckpt), "dataset": str(args.dataset), **table}
    if args.displace:
        moved = displaced(args.ckpt, args.dataset, args.train_episodes, args.draws, args.seed, args.task)
        result["displaced"] = print_displaced(
            moved, "the arm displaced off its goal: the tip's gap to it (image heights)"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
