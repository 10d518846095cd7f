"""The parity harness: the inputs an exported graph is gated on (random and from the training
dataset), the PyTorch policy's reference actions for them through LeRobot's own
pre/post-processors, and the gate that judges a graph against them (its figures and thresholds:
export/parity.py). The bundle's golden set is one of these input sets with its reference, so
``drift-export --verify`` re-runs the same comparison on the target machine.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lerobot_policy_drift.drift.lerobot_compat import normalizer_stats
from lerobot_policy_drift.drift.video_backend import video_backend

from .checkpoint import ExportError, LoadedCheckpoint
from .graph import NOISE, PREFIX, PREFIX_LENGTH, action_affine, input_shapes
from .manifest import ParityReport
from .onnxrt import create_session, run
from .parity import GATES, measure


@dataclass
class InputSet:
    """Graph feeds (numpy, robot units / uint8) for a number of batches."""

    feeds: list[dict[str, np.ndarray]]
    source: str


def random_inputs(ckpt: LoadedCheckpoint, batch: int, n: int, gen: torch.Generator) -> InputSet:
    """States (and committed actions) spread 10 % past the training range, random images, N(0, I)
    noise, prefix lengths 0..max_prefix_steps."""
    shapes = input_shapes(ckpt, batch)
    stats = normalizer_stats(ckpt.normalizer) | normalizer_stats(ckpt.unnormalizer)
    feeds = []
    for _ in range(n):
        feed = {}
        for name, (shape, dtype) in shapes.items():
            if dtype == "uint8":
                feed[name] = torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8).numpy()
            elif name == NOISE:
                feed[name] = torch.randn(shape, generator=gen).numpy()
            elif name == PREFIX_LENGTH:
                feed[name] = _prefix_length(ckpt, shape, gen)
            else:
                lo, hi = _range(stats.get("action" if name == PREFIX else name, {}), shape[-1])
                u = torch.rand(shape, generator=gen) * 1.2 - 0.1
                feed[name] = (lo + u * (hi - lo)).numpy().astype(np.float32)
        feeds.append(feed)
    return InputSet(feeds, "random")


def _prefix_length(ckpt: LoadedCheckpoint, shape: tuple[int, ...], gen: torch.Generator) -> np.ndarray:
    """One committed length for the whole batch (LeRobot's RTC call takes one delay), 0 included."""
    d = torch.randint(0, ckpt.policy.config.max_prefix_steps + 1, (1,), generator=gen)
    return d.expand(shape).numpy().astype(np.int64)


def _range(stats: dict, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    if "min" in stats:
        return stats["min"], stats["max"]
    if "mean" in stats:
        return stats["mean"] - 2 * stats["std"], stats["mean"] + 2 * stats["std"]
    return -torch.ones(dim), torch.ones(dim)


def dataset_inputs(ckpt: LoadedCheckpoint, batch: int, n: int, gen: torch.Generator) -> InputSet:
    """Observation histories from the training dataset (images quantized back to uint8), and for a
    prefix-conditioned policy the demonstration's own next actions as the committed prefix."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    cfg = ckpt.policy.config
    shapes = input_shapes(ckpt, batch)
    keys = [k for k in shapes if k not in (NOISE, PREFIX, PREFIX_LENGTH)]
    deltas = {k: [i / ckpt.fps for i in cfg.observation_delta_indices] for k in keys}
    if PREFIX in shapes:
        deltas["action"] = [i / ckpt.fps for i in range(cfg.max_prefix_steps)]
    try:
        dataset = LeRobotDataset(
            ckpt.dataset_repo_id or "local/dataset",
            root=ckpt.dataset_root,
            delta_timestamps=deltas,
            video_backend=video_backend(),
        )
    except Exception as err:  # LeRobot raises many types for an unreadable dataset
        raise ExportError(f"could not read the training dataset at {ckpt.dataset_root}: {err}") from err
    idx = torch.randint(len(dataset), (n, batch), generator=gen)
    feeds = []
    for row in idx:
        items = [dataset[int(i)] for i in row]
        feed = {}
        for k in keys:
            stacked = torch.stack([item[k] for item in items])
            if shapes[k][1] == "uint8":
                stacked = (stacked * 255).round().clamp(0, 255).to(torch.uint8)
            feed[k] = stacked.numpy()
        feed[NOISE] = torch.randn(shapes[NOISE][0], generator=gen).numpy()
        if PREFIX in shapes:
            feed[PREFIX] = torch.stack([item["action"] for item in items]).numpy().astype(np.float32)
            feed[PREFIX_LENGTH] = _prefix_length(ckpt, shapes[PREFIX_LENGTH][0], gen)
        feeds.append(feed)
    return InputSet(feeds, f"dataset {ckpt.dataset_repo_id or ckpt.dataset_root}")


@torch.no_grad()
def reference_actions(ckpt: LoadedCheckpoint, feed: dict[str, np.ndarray]) -> np.ndarray:
    """Robot-unit actions of the PyTorch policy through LeRobot's pre/post-processors; a committed
    prefix goes in through LeRobot's RTC call (normalized by the preprocessor, as LeRobot's RTC
    engine hands the policy its left-over)."""
    obs = {}
    for k, v in feed.items():
        if k in (NOISE, PREFIX, PREFIX_LENGTH):
            continue
        t = torch.from_numpy(v)
        obs[k] = t.float() / 255.0 if t.dtype == torch.uint8 else t
    rtc = {}
    if PREFIX in feed:
        obs["action"] = torch.from_numpy(feed[PREFIX])
        rtc = {"inference_delay": int(feed[PREFIX_LENGTH][0])}
    batch = ckpt.preprocessor(obs)
    if rtc:
        rtc["prev_chunk_left_over"] = batch.pop("action")
    ckpt.policy.reset()
    normalized = ckpt.policy.predict_action_chunk(batch, noise=torch.from_numpy(feed[NOISE]), **rtc)
    return ckpt.postprocessor(normalized).numpy()


@dataclass
class Reference:
    """The PyTorch policy's actions for every feed of an input set."""

    inputs: InputSet
    robot: list[np.ndarray]


def references(ckpt: LoadedCheckpoint, sets: list[InputSet]) -> list[Reference]:
    out = []
    for input_set in sets:
        out.append(Reference(input_set, [reference_actions(ckpt, feed) for feed in input_set.feeds]))
    return out


def gate(
    ckpt: LoadedCheckpoint, bundle: Path, model_file: str, backend: str, refs: list[Reference]
) -> ParityReport:
    """Run one exported graph on every input set against the reference and judge it by its gate."""
    session = create_session(bundle / model_file)
    offset, scale = action_affine(ckpt, len(ckpt.action_names))
    feeds = [feed for ref in refs for feed in ref.inputs.feeds]
    expected = [robot for ref in refs for robot in ref.robot]
    figures = measure(lambda feed: run(session, feed), feeds, expected, offset, scale)
    first = refs[0].inputs.feeds[0]
    repeatable = bool(np.array_equal(run(session, first), run(session, first)))
    realistic = [r.inputs for r in refs if r.inputs.source != "random"]
    return ParityReport(
        backend=backend,
        model=model_file,
        reference="torch DriftPolicy + LeRobot processors",
        n_random=sum(len(r.inputs.feeds) for r in refs if r.inputs.source == "random"),
        n_realistic=sum(len(s.feeds) for s in realistic),
        realistic_source=realistic[0].source if realistic else "none",
        max_abs_normalized=figures.max_abs,
        min_cosine=figures.min_cosine,
        max_abs_robot_units=figures.max_robot_abs,
        bitwise_repeatable=repeatable,
        passed=GATES[backend].passes(figures) and repeatable,
    )


def golden_data(ckpt: LoadedCheckpoint, ref: Reference) -> dict[str, np.ndarray]:
    """Inputs and expected robot-unit outputs, plus the action offset/scale (for --verify)."""
    feeds = ref.inputs.feeds
    golden = {f"input.{k}": np.stack([f[k] for f in feeds]) for k in feeds[0]}
    golden["expected"] = np.stack(ref.robot)
    golden["action_offset"], golden["action_scale"] = action_affine(ckpt, len(ckpt.action_names))
    return golden


def refusal(report: ParityReport) -> ExportError:
    g = GATES[report.backend]
    return ExportError(
        f"parity gate failed for {report.backend}: "
        f"max |Δ| {report.max_abs_normalized:.2e} (≤ {g.max_abs:g}), "
        f"min cosine {report.min_cosine:.6f} (≥ {g.min_cosine}), "
        f"bitwise repeatable {report.bitwise_repeatable}; nothing was written."
    )
