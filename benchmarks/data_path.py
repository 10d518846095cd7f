"""The training data path: what a sample costs, and what LeRobot's own options buy per step.

1. **Sample**: ms per training sample with the drift recipe's delta timestamps (2 frames, 16
   actions), for the demos as recorded (PNG images in parquet: how drift-run and ``make demo``
   record):
   - ``LeRobotDataset.__getitem__`` (lerobot-train's default, map-style), with the number of PNG
     frames it decodes per sample;
   - the same on a video copy of the frames (LeRobot's default encoding), per backend that loads
     here (torchcodec needs FFmpeg's shared libraries; PyAV always);
   - ``StreamingLeRobotDataset`` (``--dataset.streaming=true``): one pass over every frame,
     shuffle buffer included, per sample.
2. **Steps**: ``lerobot-train`` (the closed-loop recipe, drift) for ``--steps`` steps per data path
   (map-style with 0 and 1 loader workers; streaming with 1, which it needs: LeRobot shards the
   stream over the workers), in ``--rounds`` alternating rounds, from lerobot-train's own log:
   ``data_s`` (waiting for the batch) and ``updt_s`` (forward, backward, optimizer) averaged over
   the logging windows after the first, and the command's wall time (start-up included).

Measured side by side in one run (this machine is noisy); results to ``OUT/data_path.json``.
Usage::

    python -m benchmarks.data_path --dataset outputs/closed_loop/dataset --steps 200 --rounds 3
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
from lerobot_policy_drift.demos.train import STREAMING_ARGS, train_policy

LOG_LINE = re.compile(r"updt_s:([0-9.]+) data_s:([0-9.]+)")
# name → (loader workers, extra lerobot-train arguments)
TRAIN_PATHS = {
    "map-style, 0 workers": (0, ()),
    "map-style, 1 worker": (1, ()),
    "streaming, 1 worker": (1, STREAMING_ARGS),
}


def _deltas(dataset_root: Path) -> dict[str, list[float]]:
    """The recipe's delta timestamps (n_obs_steps 2, horizon 16) for every feature of the dataset."""
    info = json.loads((dataset_root / "meta" / "info.json").read_text())
    fps = info["fps"]
    cams = [k for k, f in info["features"].items() if f["dtype"] in ("image", "video")]
    obs = [(i - 1) / fps for i in range(2)]
    return {"observation.state": obs, **dict.fromkeys(cams, obs), "action": [i / fps for i in range(-1, 15)]}


def sample_ms(root: Path, backend: str | None, samples: int) -> tuple[float, float]:
    """Median ms of ``__getitem__`` over ``samples`` random indices (after 5 warm-up reads), and
    the image frames decoded per sample (counted around ``datasets``' image decoder)."""
    from datasets.features.image import Image
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    dataset = LeRobotDataset(REPO_ID, root=root, delta_timestamps=_deltas(root), video_backend=backend)
    rng = np.random.default_rng(0)
    indices = rng.integers(0, len(dataset), samples + 5)
    times = []
    decode, decoded = Image.decode_example, [0]

    def counted(self, *args, **kwargs):
        decoded[0] += 1
        return decode(self, *args, **kwargs)

    Image.decode_example = counted
    try:
        for n, i in enumerate(indices):
            if n == 5:
                decoded[0] = 0
            start = time.perf_counter()
            dataset[int(i)]
            times.append(time.perf_counter() - start)
    finally:
        Image.decode_example = decode
    return float(np.median(times[5:]) * 1e3), decoded[0] / samples


def streaming_ms(root: Path) -> float:
    """ms per sample of one pass of ``StreamingLeRobotDataset`` over every frame (buffer included)."""
    from lerobot.datasets.streaming_dataset import StreamingLeRobotDataset

    dataset = StreamingLeRobotDataset(
        REPO_ID, root=root, delta_timestamps=_deltas(root), max_num_shards=1, return_uint8=True
    )
    start = time.perf_counter()
    count = sum(1 for _ in dataset)
    return (time.perf_counter() - start) * 1e3 / count


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


def train_timing(dataset: Path, out: Path, steps: int, path: str) -> dict:
    """lerobot-train for ``steps`` steps on one data path: data_s / updt_s from its log."""
    workers, extra = TRAIN_PATHS[path]
    slug = re.sub(r"[^a-z0-9]+", "_", path)
    run, log = out / f"train_{slug}", out / f"train_{slug}.log"
    if run.exists():
        shutil.rmtree(run)
    start = time.perf_counter()
    args = (*TRAIN_ARGS, *DRIFT_ARGS, *extra, "--seed=1")
    train_policy("drift", dataset, REPO_ID, run, steps, BATCH_SIZE, *args, num_workers=workers, log=log)
    wall = time.perf_counter() - start
    windows = [(float(u), float(d)) for u, d in LOG_LINE.findall(log.read_text())][1:]  # 1st: warm-up
    updt, data = (float(np.mean(v)) for v in zip(*windows, strict=True))
    shutil.rmtree(run)
    return {"path": path, "updt_s": updt, "data_s": data, "step_s": updt + data, "wall_s": wall}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=Path("outputs/closed_loop/dataset"))
    parser.add_argument("--out", type=Path, default=Path("outputs/data_path"))
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of every data path")
    parser.add_argument("--paths", nargs="+", choices=TRAIN_PATHS, default=list(TRAIN_PATHS))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from lerobot_policy_drift.drift.video_backend import video_backend

    video = video_copy(args.dataset, args.out / "video_copy")
    backends = ["pyav"] + (["torchcodec"] if video_backend() == "torchcodec" else [])
    samples = {"map-style, images (PNG)": sample_ms(args.dataset, None, args.samples)}
    for backend in backends:
        samples[f"map-style, video ({backend})"] = sample_ms(video, backend, args.samples)
    samples["streaming, images (PNG)"] = (streaming_ms(args.dataset), float("nan"))
    steps = [
        train_timing(args.dataset, args.out, args.steps, path) | {"round": r + 1}
        for r in range(args.rounds)
        for path in args.paths
    ]
    results = {"sample_ms": samples, "train": steps, "steps": args.steps, "batch_size": BATCH_SIZE}
    (args.out / "data_path.json").write_text(json.dumps(results, indent=2))

    table = Table(title=f"A training sample (2 frames, 16 actions); map-style: median of {args.samples}")
    for col in ("data path", "ms / sample", f"× batch {BATCH_SIZE}", "PNG decodes / sample"):
        table.add_column(col, justify="right")
    for name, (ms, decodes) in samples.items():
        table.add_row(
            name, f"{ms:.2f}", f"{ms * BATCH_SIZE:.0f} ms", "" if np.isnan(decodes) else f"{decodes:.0f}"
        )
    Console().print(table)
    table = Table(title=f"lerobot-train, {args.steps} steps, batch {BATCH_SIZE} (from its log), each round")
    for col in (
        "round",
        "data path",
        "data_s",
        "updt_s",
        "s / step",
        f"× faster than {args.paths[0]}",
        "wall s",
    ):
        table.add_column(col, justify="right")
    for r in steps:
        base = next(s for s in steps if s["round"] == r["round"] and s["path"] == args.paths[0])
        table.add_row(
            str(r["round"]),
            r["path"],
            f"{r['data_s']:.3f}",
            f"{r['updt_s']:.3f}",
            f"{r['step_s']:.3f}",
            f"{base['step_s'] / r['step_s']:.2f}",
            f"{r['wall_s']:.0f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
