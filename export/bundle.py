"""Checkpoint → bundle: export the graph, gate it on parity, write it atomically.

The parity gate compares ONNX Runtime (CPU, FP32) with the PyTorch policy run through
LeRobot's own pre/post-processors on the same inputs and noise. An export that fails the gate
is not written.
"""

import importlib.metadata as md
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from drift.lerobot_compat import normalizer_stats
from drift.video_backend import video_backend

from .checkpoint import ExportError, LoadedCheckpoint, load_checkpoint
from .fp16 import convert_fp16
from .graph import NOISE, OUTPUT, DriftGraph, action_affine, input_shapes
from .manifest import (
    FP16_MODEL_FILE,
    GOLDEN_FILE,
    GRAPH_FILES,
    INT8_MODEL_FILE,
    MANIFEST,
    MODEL_FILE,
    SEAL_FILE,
    BundleManifest,
    FeatureNormalization,
    ParityReport,
    TensorSpec,
    sha256_dir,
    sha256_file,
)
from .onnxrt import create_session, run
from .parity import GATES, ParityFigures, compare, to_normalized
from .quantize import quantize_int8

DEFAULT_OPSET = 17  # TorchScript exporter; TensorRT 10 (JetPack 6) parses opsets 9–20


@dataclass
class InputSet:
    """Graph feeds (numpy, robot units / uint8) for a number of batches."""

    feeds: list[dict[str, np.ndarray]]
    source: str


def random_inputs(ckpt: LoadedCheckpoint, batch: int, n: int, gen: torch.Generator) -> InputSet:
    """States spread 10 % past the training range, random images, N(0, I) noise."""
    shapes = input_shapes(ckpt, batch)
    stats = normalizer_stats(ckpt.normalizer)
    feeds = []
    for _ in range(n):
        feed = {}
        for name, (shape, dtype) in shapes.items():
            if dtype == "uint8":
                feed[name] = torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8).numpy()
            elif name == NOISE:
                feed[name] = torch.randn(shape, generator=gen).numpy()
            else:
                lo, hi = _range(stats.get(name, {}), shape[-1])
                u = torch.rand(shape, generator=gen) * 1.2 - 0.1
                feed[name] = (lo + u * (hi - lo)).numpy().astype(np.float32)
        feeds.append(feed)
    return InputSet(feeds, "random")


def _range(stats: dict, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    if "min" in stats:
        return stats["min"], stats["max"]
    if "mean" in stats:
        return stats["mean"] - 2 * stats["std"], stats["mean"] + 2 * stats["std"]
    return -torch.ones(dim), torch.ones(dim)


def dataset_inputs(ckpt: LoadedCheckpoint, batch: int, n: int, gen: torch.Generator) -> InputSet:
    """Observation histories from the training dataset (images quantized back to uint8)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    cfg = ckpt.policy.config
    shapes = input_shapes(ckpt, batch)
    keys = [k for k in shapes if k != NOISE]
    deltas = {k: [i / ckpt.fps for i in cfg.observation_delta_indices] for k in keys}
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
        feeds.append(feed)
    return InputSet(feeds, f"dataset {ckpt.dataset_repo_id or ckpt.dataset_root}")


@torch.no_grad()
def reference_actions(ckpt: LoadedCheckpoint, feed: dict[str, np.ndarray]) -> np.ndarray:
    """Robot-unit actions of the PyTorch policy through LeRobot's pre/post-processors."""
    obs = {}
    for k, v in feed.items():
        if k == NOISE:
            continue
        t = torch.from_numpy(v)
        obs[k] = t.float() / 255.0 if t.dtype == torch.uint8 else t
    batch = ckpt.preprocessor(obs)
    ckpt.policy.reset()
    normalized = ckpt.policy.predict_action_chunk(batch, noise=torch.from_numpy(feed[NOISE]))
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
    figures = ParityFigures()
    for ref in refs:
        for feed, ref_robot in zip(ref.inputs.feeds, ref.robot, strict=True):
            out = run(session, feed)
            normalized = compare(to_normalized(out, offset, scale), to_normalized(ref_robot, offset, scale))
            figures.add(normalized, robot_abs=float(np.abs(out - ref_robot).max()))
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


def _refuse(report: ParityReport) -> ExportError:
    g = GATES[report.backend]
    return ExportError(
        f"parity gate failed for {report.backend}: "
        f"max |Δ| {report.max_abs_normalized:.2e} (≤ {g.max_abs:g}), "
        f"min cosine {report.min_cosine:.6f} (≥ {g.min_cosine}), "
        f"bitwise repeatable {report.bitwise_repeatable}; nothing was written."
    )


def _versions() -> dict[str, str]:
    names = ["torch", "onnx", "onnxruntime", "lerobot", "lerobot_policy_drift"]
    out = {}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def export_onnx(graph: DriftGraph, example: dict[str, np.ndarray], path: Path, opset: int) -> None:
    """Trace ``graph`` on ``example`` feeds (graph input order) into a checked ONNX file."""
    torch.onnx.export(
        graph,
        tuple(torch.from_numpy(v) for v in example.values()),
        str(path),
        input_names=list(example),
        output_names=[OUTPUT],
        opset_version=opset,
        dynamo=False,
    )
    onnx.checker.check_model(str(path))


def export_bundle(
    ckpt_path: Path,
    out: Path,
    opset: int = DEFAULT_OPSET,
    batch: int = 1,
    dataset_root: Path | None = None,
    n_random: int = 16,
    n_realistic: int = 16,
    force: bool = False,
    int8: bool = False,
    fp16: bool = False,
) -> BundleManifest:
    """Export, gate and atomically write a bundle; raise ExportError (writing nothing) otherwise.

    With ``fp16`` the bundle also holds an FP16 graph (export/fp16.py), gated against the same
    reference with the accelerator gate; with ``int8`` an INT8 graph, calibrated on the dataset
    inputs and gated with INT8_GATE.
    """
    out = Path(out)
    check_output(out, force)  # before any work: a refusal costs nothing and touches nothing
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as err:
        raise ExportError(
            f"cannot write {out} ({err.strerror}); pick another --out. Nothing was written."
        ) from None
    try:
        ckpt = load_checkpoint(ckpt_path, dataset_root)
        cfg = ckpt.policy.config
        graph = DriftGraph(ckpt)
        shapes = input_shapes(ckpt, batch)
        gen = torch.Generator().manual_seed(0)
        example = random_inputs(ckpt, batch, 1, gen).feeds[0]
        model = tmp / MODEL_FILE
        export_onnx(graph, example, model, opset)
        sets = [random_inputs(ckpt, batch, n_random, gen), dataset_inputs(ckpt, batch, n_realistic, gen)]
        refs = references(ckpt, sets)
        reports = [gate(ckpt, tmp, MODEL_FILE, "onnxruntime-cpu-fp32", refs)]
        if fp16:
            convert_fp16(model, tmp / FP16_MODEL_FILE)
            reports.append(gate(ckpt, tmp, FP16_MODEL_FILE, "onnxruntime-cpu-fp16", refs))
        if int8:
            quantize_int8(model, tmp / INT8_MODEL_FILE, sets[1].feeds)
            reports.append(gate(ckpt, tmp, INT8_MODEL_FILE, "onnxruntime-cpu-int8", refs))
        for report in reports:
            if not report.passed:
                raise _refuse(report)
        np.savez(tmp / GOLDEN_FILE, **golden_data(ckpt, refs[1]))
        manifest = BundleManifest(
            inputs=[TensorSpec(name=k, dtype=dt, shape=list(s)) for k, (s, dt) in shapes.items()],
            outputs=[
                TensorSpec(
                    name=OUTPUT, dtype="float32", shape=[batch, cfg.n_action_steps, len(ckpt.action_names)]
                )
            ],
            camera_order=[k.removeprefix("observation.images.") for k in cfg.image_features],
            state_names=ckpt.state_names,
            action_names=ckpt.action_names,
            fps=ckpt.fps,
            n_obs_steps=cfg.n_obs_steps,
            horizon=cfg.horizon,
            n_action_steps=cfg.n_action_steps,
            batch_size=batch,
            noise_scale=cfg.noise_scale,
            normalization=_normalization(ckpt),
            exporter=f"torch.onnx.export(dynamo=False) torch {torch.__version__}",
            opset=opset,
            versions=_versions(),
            checkpoint_sha256=sha256_dir(ckpt.path),
            files={r.model: sha256_file(tmp / r.model) for r in reports}
            | {GOLDEN_FILE: sha256_file(tmp / GOLDEN_FILE)},
            parity=reports,
        )
        manifest.write(tmp)
        tmp.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would keep the bundle from other users
        _replace(tmp, out, force)
        return manifest
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


BUNDLE_NAMES = {MANIFEST, SEAL_FILE, GOLDEN_FILE, *GRAPH_FILES.values()}


def check_output(out: Path, force: bool) -> None:
    """Refuse an ``--out`` that cannot become a bundle (``ExportError``; nothing is touched):
    a file, a folder that exists without ``force``, a folder that is neither empty nor a Drift
    bundle (``--force`` never deletes anything else), or a place that cannot be written."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ExportError(
            f"--out {out} is a file or a link, not a bundle folder; pick another path. Nothing was touched."
        )
    if out.is_dir():
        entries = sorted(p.name for p in out.iterdir())
        if not force:
            raise ExportError(
                f"{out} already exists; pass --force to replace it (only a Drift bundle is replaced)."
            )
        if entries and not (MANIFEST in entries and set(entries) <= BUNDLE_NAMES):
            shown = ", ".join(entries[:5]) + (", …" if len(entries) > 5 else "")
            raise ExportError(
                f"--force replaces only a Drift bundle or an empty folder, and {out} is neither (it holds "
                f"{shown}). Nothing was touched; pick another --out."
            )
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {out}: {parent} is not a writable folder. Pick another --out.")
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise ExportError(f"cannot replace {out}: it is not writable. Pick another --out.")


def _replace(tmp: Path, out: Path, force: bool) -> None:
    """Move the finished bundle into place; an old bundle is moved aside first, then deleted."""
    check_output(out, force)  # again: the folder may have changed during the export
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    os.replace(out, old / "bundle")
    os.replace(tmp, out)
    shutil.rmtree(old)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _normalization(ckpt: LoadedCheckpoint) -> dict[str, FeatureNormalization]:
    cfg = ckpt.policy.config
    result = {}
    features = {**cfg.input_features, **cfg.output_features}
    for key, stats in normalizer_stats(ckpt.normalizer).items():
        if key not in features:
            continue
        mode = cfg.normalization_mapping.get(features[key].type.value)
        result[key] = FeatureNormalization(
            mode=str(mode.value if mode else "IDENTITY"),
            stats={name: t.flatten().tolist() for name, t in stats.items()},
        )
    return result
