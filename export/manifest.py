"""The bundle's manifest: one pydantic model that writes, loads and validates ``manifest.json``.

A bundle is a folder: ``model.onnx``, ``golden.npz`` (inputs and expected outputs for
re-checking on the target) and ``manifest.json``. Loading re-hashes every file and refuses a
bundle whose files do not match their digests.
"""

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONTRACT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_FILE = "model.onnx"
INT8_MODEL_FILE = "model.int8.onnx"
FP16_MODEL_FILE = "model.fp16.onnx"
GOLDEN_FILE = "golden.npz"


class BundleError(Exception):
    """A bundle that cannot be used: the message says what is wrong and what to do."""


class TensorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    dtype: Literal["float32", "uint8"]
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

    contract_version: Literal[1] = CONTRACT_VERSION
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
    normalization: dict[str, FeatureNormalization]
    exporter: str
    opset: int
    versions: dict[str, str]
    checkpoint_sha256: str
    files: dict[str, str]
    parity: list[ParityReport]

    def input(self, name: str) -> TensorSpec:
        return next(spec for spec in self.inputs if spec.name == name)

    def graph_file(self, precision: str) -> str:
        """The bundle's graph in ``precision`` (fp32 / fp16 / int8), as gated at export."""
        for report in self.parity:
            if report.backend.endswith(f"-{precision}"):
                return report.model
        raise BundleError(
            f"this bundle has no {precision} graph (it has {', '.join(r.model for r in self.parity)}); "
            f"re-export it with drift-export --ckpt CKPT --{precision}, or use precision fp32."
        )

    def write(self, bundle: Path) -> None:
        (bundle / MANIFEST).write_text(self.model_dump_json(indent=2))

    @classmethod
    def load(cls, bundle: Path, verify_files: bool = True) -> "BundleManifest":
        """Read and validate ``bundle/manifest.json``; with ``verify_files``, check every digest."""
        bundle = Path(bundle)
        path = bundle / MANIFEST
        if not path.is_file():
            raise BundleError(
                f"{bundle} is not a Drift bundle: {MANIFEST} is missing. Create one with drift-export."
            )
        try:
            manifest = cls.model_validate(json.loads(path.read_text()))
        except (json.JSONDecodeError, ValidationError) as err:
            first = str(err).splitlines()[0:3]
            raise BundleError(
                f"{path} is not a valid manifest ({' '.join(first)}). Re-export the bundle."
            ) from err
        if verify_files:
            for name, digest in manifest.files.items():
                file = bundle / name
                if not file.is_file():
                    raise BundleError(f"bundle file {file} is missing. Re-export the bundle.")
                if sha256_file(file) != digest:
                    raise BundleError(
                        f"bundle file {file} does not match its sha256 in {MANIFEST} (corrupt or modified). "
                        "Re-export the bundle or copy it again."
                    )
        return manifest


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
