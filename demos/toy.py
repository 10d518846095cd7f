"""The toy-task demo (no arm): record demos, lerobot-train a DriftPolicy, score it offline.

1. writes the ``obstacle`` task (two valid paths around an obstacle) as a local LeRobotDataset;
2. runs ``lerobot-train --policy.type=drift`` on it (CPU, a few minutes on 2 cores);
3. loads the checkpoint through LeRobot's own factory and processors and samples chunks at the
   decision point: how many follow a valid path, how the two paths are split, how many head
   into the obstacle, and the time of one network call;
4. exports it with drift-export (parity-gated ONNX bundle) and times the bundle in ONNX Runtime.

Artifacts land in ``--out``; re-running reuses the dataset and checkpoint unless ``--fresh``.
"""

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from lerobot_policy_drift.demos.toy_tasks import eval_states, score, write_lerobot_dataset
from lerobot_policy_drift.demos.train import train_policy
from lerobot_policy_drift.drift.timing import time_calls

TASK = "obstacle"


def record(root: Path, episodes: int) -> None:
    if (root / "meta" / "info.json").exists():
        print(f"dataset: reusing {root}")
        return
    print(f"dataset: writing {episodes} demonstrations of '{TASK}' to {root}")
    write_lerobot_dataset(TASK, root, n_episodes=episodes)


@torch.no_grad()
def evaluate(ckpt: Path, n: int) -> dict:
    from lerobot.configs import PreTrainedConfig
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors
    from lerobot.utils.import_utils import register_third_party_plugins

    register_third_party_plugins()
    cfg = PreTrainedConfig.from_pretrained(ckpt)
    policy = get_policy_class(cfg.type).from_pretrained(ckpt).eval()
    pre, post = make_pre_post_processors(cfg, pretrained_path=str(ckpt))
    states = eval_states(TASK, n, np.random.default_rng(1))
    obs = pre({"observation.state": torch.from_numpy(states)})
    obs["observation.state"] = obs["observation.state"][:, None].expand(-1, cfg.n_obs_steps, -1)
    chunks = post(policy.predict_action_chunk(obs))
    figures = score(TASK, states, chunks.numpy()).row()
    one = {k: v[:1] for k, v in obs.items() if k.startswith("observation")}
    figures["ms_per_chunk"] = (
        float(np.mean(time_calls(lambda: policy.predict_action_chunk(one), 50, warmup=1))) * 1000
    )
    return figures


def export(ckpt: Path, dataset: Path, bundle: Path) -> dict:
    from lerobot_policy_drift.export.bundle import export_bundle
    from lerobot_policy_drift.export.manifest import MODEL_FILE, BundleError, BundleManifest
    from lerobot_policy_drift.export.onnxrt import create_session, run

    try:
        manifest = BundleManifest.load(bundle)
        print(f"export: reusing {bundle}")
    except BundleError as err:  # absent, or written by an older version: export afresh
        manifest, reason = None, str(err)
    if manifest is None:  # outside the except block, so nothing below reports it as a live exception
        print(f"export: drift-export --ckpt {ckpt} --out {bundle} ({reason})")
        manifest = export_bundle(ckpt, bundle, dataset_root=dataset, force=True)
    session = create_session(bundle / MODEL_FILE)
    rng = np.random.default_rng(0)
    feed = {s.name: rng.standard_normal(s.shape).astype(np.float32) for s in manifest.inputs}
    return {
        "ort_ms": float(np.mean(time_calls(lambda: run(session, feed), 200, warmup=1))) * 1000,
        "parity": manifest.parity[0].max_abs_normalized,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"))
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--eval", type=int, default=1000, help="chunks sampled for the figures")
    parser.add_argument("--fresh", action="store_true", help="delete earlier artifacts and start over")
    args = parser.parse_args(argv)
    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)
    t0 = time.perf_counter()
    record(args.out / "dataset", args.episodes)
    ckpt = train_policy(
        "drift",
        args.out / "dataset",
        f"local/drift_{TASK}",
        args.out / "train",
        args.steps,
        64,
        "--policy.down_dims=[32,64]",
        "--policy.optimizer_lr=1e-3",
        "--policy.scheduler_warmup_steps=100",
    )
    f = evaluate(ckpt, args.eval)
    b = export(ckpt, args.out / "dataset", args.out / "bundle")

    table = Table(
        title=f"DriftPolicy on '{TASK}': {args.eval} chunks sampled at the fork (1 network call each)"
    )
    for col in ("valid path", "top / bottom", "into obstacle", "ms/chunk torch", "ms/chunk ONNX bundle"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{f['precision']:.1%}",
        f"{f['mode_plus']:.1%} / {f['mode_minus']:.1%}",
        f"{f['between']:.1%}",
        f"{f['ms_per_chunk']:.2f}",
        f"{b['ort_ms']:.2f}",
    )
    Console().print(table)
    print(f"bundle parity vs PyTorch: max |Δ| {b['parity']:.1e} (normalized units)")
    print(f"artifacts: {args.out.resolve()} (dataset/, train/checkpoints/last/pretrained_model, bundle/)")
    print(f"total time: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
