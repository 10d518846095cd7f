"""The bundle's manifest: one pydantic model that writes, loads and validates ``manifest.json``.

A bundle is a folder: ``model.onnx`` (optionally ``model.fp16.onnx`` / ``model.int8.onnx``),
``golden.npz`` (inputs and expected outputs for re-checking on the target), ``manifest.json`` and
its seal ``manifest.json.sha256`` (``sha256sum -c`` reads it).

**The seal.** The manifest holds the sha256 of every other file; the seal holds the sha256 of the
manifest. Loading checks the seal, then every digest, so nothing that decides behaviour (graphs,
golden set, motor order, fps, shapes, normalization) can change after the export's parity gate
without the bundle being refused. File names in a bundle are plain names inside its folder (no
separators, no ``..``, no links), and the graph to run follows from the precision
(``GRAPH_FILES``), never from a path in the manifest. The seal is integrity, not authenticity:
whoever can write the folder can re-seal an edited manifest; copy bundles from a source you trust.
"""

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# 2: a prefix-conditioned policy's graph may take the committed actions (``max_prefix_steps``,
# inputs ``action.prefix`` / ``action.prefix_length``). Version 1 bundles load and run unchanged.
CONTRACT_VERSION = 2
MANIFEST = "manifest.json"
MODEL_FILE = "model.onnx"
INT8_MODEL_FILE = "model.int8.onnx"
FP16_MODEL_FILE = "model.fp16.onnx"
GOLDEN_FILE = "golden.npz"
SEAL_FILE = "manifest.json.sha256"
GRAPH_FILES = {"fp32": MODEL_FILE, "fp16": FP16_MODEL_FILE, "int8": INT8_MODEL_FILE}
PARITY_BACKEND = "onnxruntime-cpu-{precision}"  # the export gate each graph passed
STATE_INPUT, NOISE_INPUT, IMAGE_PREFIX = "observation.state", "noise", "observation.images."
PREFIX_INPUT, PREFIX_LENGTH_INPUT = "action.prefix", "action.prefix_length"


class BundleError(Exception):
    """A bundle that cannot be used: the message says what is wrong and what to do."""


class TensorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    dtype: Literal["float32", "uint8", "int64"]
    shape: list[int]


class ParityReport(BaseModel):
    """Figures of one parity check of the exported graph against the reference."""

    model_config = ConfigDict(extra="forbid")
    backend: str
    model: str
    reference: str
    n_random: int
    n_realistic: int
    realistic_source: str
    max_abs_normalized: float
    min_cosine: float
    max_abs_robot_units: float
    bitwise_repeatable: bool
    passed: bool


class FeatureNormalization(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: str
    stats: dict[str, list]


class BundleManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contract_version: Literal[1, 2] = CONTRACT_VERSION
    policy_type: Literal["drift"] = "drift"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    camera_order: list[str]
    state_names: list[str]
    action_names: list[str]
    fps: int = Field(gt=0)
    n_obs_steps: int = Field(ge=1)
    horizon: int = Field(ge=1)
    n_action_steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    noise_scale: float
    max_prefix_steps: int | None = Field(default=None, ge=1)  # set iff the graph takes a prefix
    normalization: dict[str, FeatureNormalization]
    exporter: str
    opset: int
    versions: dict[str, str]
    checkpoint_sha256: str
    files: dict[str, str]
    parity: list[ParityReport]

    @model_validator(mode="after")
    def _consistent(self) -> "BundleManifest":
        """The manifest agrees with itself: file names, graphs per precision, and every shape."""
        for name in self.files:
            if not is_plain_name(name):
                raise ValueError(f"files: {name!r} is not a plain file name inside the bundle")
        graphs = {}
        for report in self.parity:
            precision = report.backend.rsplit("-", 1)[-1]
            if report.backend != PARITY_BACKEND.format(precision=precision) or precision not in GRAPH_FILES:
                raise ValueError(f"parity: unknown gate {report.backend!r}")
            if report.model != GRAPH_FILES[precision]:
                raise ValueError(
                    f"parity: the {precision} graph is {GRAPH_FILES[precision]}, not {report.model!r}"
                )
            graphs[report.model] = precision
        if MODEL_FILE not in graphs or set(self.files) != {*graphs, GOLDEN_FILE}:
            raise ValueError(
                f"files: expected exactly {sorted({MODEL_FILE, *graphs, GOLDEN_FILE})}, got {sorted(self.files)}"
            )
        b, actions = self.batch_size, len(self.action_names)
        expected = {STATE_INPUT: [b, self.n_obs_steps, len(self.state_names)]}
        expected[NOISE_INPUT] = [b, self.horizon, actions]
        if self.max_prefix_steps is not None:
            if self.contract_version < 2:
                raise ValueError("max_prefix_steps needs contract_version 2")
            expected[PREFIX_INPUT] = [b, self.max_prefix_steps, actions]
            expected[PREFIX_LENGTH_INPUT] = [b]
        names = [spec.name for spec in self.inputs]
        cameras = [n.removeprefix(IMAGE_PREFIX) for n in names if n.startswith(IMAGE_PREFIX)]
        if cameras != self.camera_order:
            raise ValueError(f"camera_order {self.camera_order} does not match the image inputs {cameras}")
        for spec in self.inputs:
            want = expected.get(spec.name)
            if spec.name.startswith(IMAGE_PREFIX):
                ok = (
                    len(spec.shape) == 5
                    and spec.shape[:3] == [b, self.n_obs_steps, 3]
                    and spec.dtype == "uint8"
                )
            elif spec.name == PREFIX_LENGTH_INPUT:
                ok = spec.dtype == "int64" and spec.shape == want
            else:
                ok = spec.dtype == "float32" and (want is None or spec.shape == want)
            if not ok:
                raise ValueError(
                    f"inputs: {spec.name} {spec.dtype} {spec.shape} does not fit the manifest's sizes"
                )
        if len(set(names)) != len(names) or set(expected) != set(names) - {
            "observation.environment_state",
            *(IMAGE_PREFIX + c for c in cameras),
        }:
            raise ValueError(f"inputs: expected {sorted(expected)} and one input per camera, got {names}")
        if [(o.name, o.dtype, o.shape) for o in self.outputs] != [
            ("action", "float32", [b, self.n_action_steps, actions])
        ]:
            raise ValueError(f"outputs: expected one float32 action [{b}, {self.n_action_steps}, {actions}]")
        if len(set(self.action_names)) != actions or len(set(self.state_names)) != len(self.state_names):
            raise ValueError("action_names / state_names: each name must appear once")
        return self

    def input(self, name: str) -> TensorSpec:
        return next(spec for spec in self.inputs if spec.name == name)

    @property
    def precisions(self) -> list[str]:
        return [r.backend.rsplit("-", 1)[-1] for r in self.parity]

    def graph_file(self, precision: str) -> str:
        """The bundle's graph in ``precision`` (fp32 / fp16 / int8), as gated at export."""
        if precision not in self.precisions:
            raise BundleError(
                f"this bundle has no {precision} graph (it has {', '.join(self.precisions)}); "
                f"re-export it with drift-export --ckpt CKPT --{precision}, or use precision fp32."
            )
        return GRAPH_FILES[precision]

    def write(self, bundle: Path) -> None:
        """``manifest.json`` and its seal (written last: a bundle without it is refused)."""
        text = self.model_dump_json(indent=2).encode()
        (bundle / MANIFEST).write_bytes(text)
        (bundle / SEAL_FILE).write_text(f"{hashlib.sha256(text).hexdigest()}  {MANIFEST}\n")

    @classmethod
    def load(cls, bundle: Path, verify_files: bool = True) -> "BundleManifest":
        """Read and validate ``bundle/manifest.json``; with ``verify_files``, check the seal and
        every digest (``BundleError`` otherwise, saying what and what to do)."""
        bundle = Path(bundle)
        path = bundle / MANIFEST
        if not path.is_file():
            what = (
                "a file"
                if bundle.is_file()
                else "missing"
                if not bundle.exists()
                else f"{MANIFEST} is missing"
            )
            raise BundleError(f"{bundle} is not a Drift bundle ({what}). Create one with drift-export.")
        text = _read_plain(bundle, MANIFEST)
        if verify_files:
            _check_seal(bundle, text)
        try:
            manifest = cls.model_validate(json.loads(text))
        except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as err:
            first = str(err).splitlines()[0:3]
            raise BundleError(
                f"{path} is not a valid manifest ({' '.join(first)}). Re-export the bundle."
            ) from None
        if verify_files:
            for name in manifest.files:
                manifest.read_file(bundle, name)
        return manifest

    def read_file(self, bundle: Path, name: str) -> bytes:
        """A bundle file's bytes, checked against its digest as read: what is used is what was sealed."""
        data = _read_plain(Path(bundle), name)
        if hashlib.sha256(data).hexdigest() != self.files[name]:
            raise BundleError(
                f"bundle file {Path(bundle) / name} does not match its sha256 in {MANIFEST} (corrupt or "
                "modified). Re-export the bundle or copy it again."
            )
        return data


def is_plain_name(name: str) -> bool:
    """A file name that can only mean a file directly inside the bundle folder."""
    return (
        bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name
    )


def _read_plain(bundle: Path, name: str) -> bytes:
    file = bundle / name
    if file.is_symlink() or (file.exists() and not file.is_file()):
        raise BundleError(
            f"bundle file {file} is not a regular file (a link or a folder). Re-export the bundle."
        )
    try:
        return file.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"bundle file {file} is missing. Re-export the bundle or copy it again.") from None
    except OSError as err:
        raise BundleError(f"bundle file {file} cannot be read ({err.strerror}).") from None


def _check_seal(bundle: Path, manifest_bytes: bytes) -> None:
    try:
        seal = _read_plain(bundle, SEAL_FILE).decode(errors="replace").split()
    except BundleError:
        raise BundleError(
            f"{bundle} has no seal ({SEAL_FILE}), so its manifest cannot be trusted (made by an older "
            "drift-export, or tampered with). Re-export the bundle with drift-export."
        ) from None
    if seal[:2] != [hashlib.sha256(manifest_bytes).hexdigest(), MANIFEST]:
        raise BundleError(
            f"{bundle / MANIFEST} does not match its seal {SEAL_FILE} (edited or corrupt). "
            "Re-export the bundle or copy it again."
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_dir(path: Path) -> str:
    """One digest over every file of a folder (names and contents, in sorted order)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()
