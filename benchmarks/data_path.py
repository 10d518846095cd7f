"""The training data path: what a sample costs, and what LeRobot's own options buy per step.

1. **Sample**: ``LeRobotDataset.__getitem__`` with the drift recipe's delta timestamps (2 frames,
   16 actions), ms per sample, for the demos as recorded (PNG images in parquet: how drift-run and
   ``make demo`` record) and for a video copy of the same frames (LeRobot's default encoding), decoded
   by each backend that loads here (torchcodec needs FFmpeg's shared libraries; PyAV always).
2. **Steps**: ``lerobot-train`` (the closed-loop recipe, drift) for ``--steps`` steps with each
   ``--num_workers``, from lerobot-train's own log: ``data_s`` (waiting for the batch) and ``updt_s``
   (forward, backward, optimizer) averaged over the last logging windows, and the command's wall time.

Measured side by side in one run (this machine is noisy); results to ``OUT/data_path.json``.
Usage::

    python -m benchmarks.data_path --dataset outputs/closed_loop/dataset --steps 300
"""

import argparse
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from lerobot_policy_drift.demos.arm import BATCH_SIZE, DRIFT_ARGS, REPO_ID, TRAIN_ARGS
from lerobot_policy_drift.demos.train import train_policy

LOG_LINE = re.compile(r"updt_s:([0-9.]+) data_s:([0-9.]+)")


def _deltas(dataset_root: Path) -> dict[str, list[float]]:
    """The recipe's delta timestamps (n_obs_steps 2, horizon 16) for every feature of the dataset."""
    info = json.loads((dataset_root / "meta" / "info.json").read_text())
    fps = info["fps"]
    cams = [k for k, f in info["features"].items() if f["dtype"] in ("image", "video")]
    obs = [(i - 1) / fps for i in range(2)]
    return {"observation.state": obs, **dict.fromkeys(cams, obs), "action": [i / fps for i in range(-1, 15)]}


def sample_ms(root: Path, backend: str | None, samples: int) -> float:
    """Median ms of ``__getitem__`` over ``samples`` random indices (after 5 warm-up reads)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    dataset = LeRobotDataset(REPO_ID, root=root, delta_timestamps=_deltas(root), video_backend=backend)
    rng = np.random.default_rng(0)
    indices = rng.integers(0, len(dataset), samples + 5)
    times = []
    for i in indices:
        start = time.perf_counter()
        dataset[int(i)]
        times.append(time.perf_counter() - start)
    return float(np.median(times[5:]) * 1e3)


def video_copy(root: Path, out: Path) -> Path:
    """The same episodes re-encoded as LeRobot videos (``use_videos=True``), frame for frame."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    if (out / "meta" / "info.json").exists():
        return out
    source = LeRobotDataset(REPO_ID, root=root)
    features = {k: dict(v) for k, v in source.meta.features.items() if k not in DEFAULT_KEYS}
    for feature in features.values():
        if feature["dtype"] == "image":
            feature["dtype"] = "video"
    copy = LeRobotDataset.create(REPO_ID, source.fps, features=features, root=out, use_videos=True)
    episode = None
    for i in range(len(source)):
        item = source[i]
        if episode is not None and int(item["episode_index"]) != episode:
            copy.save_episode()
        episode = int(item["episode_index"])
        frame = {k: _hwc(item[k]) if features[k]["dtype"] == "video" else item[k] for k in features}
        copy.add_frame({**frame, "task": item["task"]})
    copy.save_episode()
    copy.finalize()
    return out


DEFAULT_KEYS = {"timestamp", "frame_index", "episode_index", "index", "task_index"}


def _hwc(chw) -> np.ndarray:
    return (chw.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def train_timing(dataset: Path, out: Path, steps: int, workers: int) -> dict:
    """lerobot-train for ``steps`` steps with ``--num_workers=workers``: data_s / updt_s from its log."""
    run, log = out / f"train_w{workers}", out / f"train_w{workers}.log"
    if run.exists():
        shutil.rmtree(run)
    start = time.perf_counter()
    args = (*TRAIN_ARGS, *DRIFT_ARGS, "--seed=1")
    train_policy("drift", dataset, REPO_ID, run, steps, BATCH_SIZE, *args, num_workers=workers, log=log)
    wall = time.perf_counter() - start
    windows = [(float(u), float(d)) for u, d in LOG_LINE.findall(log.read_text())][1:]  # 1st: warm-up
    updt, data = (float(np.mean(v)) for v in zip(*windows, strict=True))
    shutil.rmtree(run)
    return {"workers": workers, "updt_s": updt, "data_s": data, "step_s": updt + data, "wall_s": wall}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=Path("outputs/closed_loop/dataset"))
    parser.add_argument("--out", type=Path, default=Path("outputs/data_path"))
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from lerobot_policy_drift.drift.video_backend import video_backend

    video = video_copy(args.dataset, args.out / "video_copy")
    backends = ["pyav"] + (["torchcodec"] if video_backend() == "torchcodec" else [])
    samples = {"images (PNG)": sample_ms(args.dataset, None, args.samples)}
    for backend in backends:
        samples[f"video ({backend})"] = sample_ms(video, backend, args.samples)
    steps = [train_timing(args.dataset, args.out, args.steps, w) for w in args.workers]
    results = {"sample_ms": samples, "train": steps, "steps": args.steps, "batch_size": BATCH_SIZE}
    (args.out / "data_path.json").write_text(json.dumps(results, indent=2))

    table = Table(title=f"__getitem__, drift recipe (2 frames, 16 actions), median of {args.samples}")
    table.add_column("storage")
    table.add_column("ms / sample", justify="right")
    table.add_column(f"× batch {BATCH_SIZE}", justify="right")
    for name, ms in samples.items():
        table.add_row(name, f"{ms:.2f}", f"{ms * BATCH_SIZE:.0f} ms")
    Console().print(table)
    table = Table(title=f"lerobot-train, {args.steps} steps, batch {BATCH_SIZE} (from its log)")
    for col in ("num_workers", "data_s", "updt_s", "s / step", "× workers 0", "wall s"):
        table.add_column(col, justify="right")
    base = steps[0]["step_s"]
    for r in steps:
        table.add_row(
            str(r["workers"]),
            f"{r['data_s']:.3f}",
            f"{r['updt_s']:.3f}",
            f"{r['step_s']:.3f}",
            f"{r['step_s'] / base:.2f}",
            f"{r['wall_s']:.0f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
