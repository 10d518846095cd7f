"""Checkpoint → bundle: export the graph, gate it on parity (export/harness.py), write it
atomically into a folder that may receive it (``check_output``). An export that fails its gate is
not written.
"""

import importlib.metadata as md
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

from lerobot_policy_drift.drift.lerobot_compat import normalizer_stats

from .checkpoint import ExportError, LoadedCheckpoint, load_checkpoint
from .fp16 import convert_fp16
from .graph import OUTPUT, DriftGraph, input_shapes, max_prefix_steps
from .harness import dataset_inputs, gate, golden_data, random_inputs, references, refusal
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
    TensorSpec,
    sha256_dir,
    sha256_file,
)
from .quantize import quantize_int8

DEFAULT_OPSET = 17  # TorchScript exporter; TensorRT 10 (JetPack 6) parses opsets 9–20


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
                raise refusal(report)
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
            max_prefix_steps=max_prefix_steps(cfg) or None,
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
