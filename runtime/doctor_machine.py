"""drift-doctor's checks of the computer beside the arm: Python and packages, ONNX Runtime builds
and the providers that really load, torch's devices, TensorRT, and which Jetson case this is."""

import importlib.metadata as md
import importlib.util
import re
import sys
from pathlib import Path

from lerobot_policy_drift.export.onnxrt import (
    ORT_PROVIDERS,
    ProviderError,
    installed_ort_builds,
    provider_session,
)

from .backends import AUTO_PROVIDERS
from .checks import Check, fail, ok

JETSON_RELEASE = Path("/etc/nv_tegra_release")  # L4T's release file; absent off a Jetson
JETPACK_7_L4T = 38  # JetPack 7 is L4T R38 and later (7.2 is R39.2): Python 3.12, CUDA 13


def machine_checks(jetson_release: Path = JETSON_RELEASE) -> list[Check]:
    return [
        python_check(sys.version_info[:3]),
        packages_check(),
        *onnxruntime_checks(installed_ort_builds()),
        torch_check(),
        tensorrt_check(),
        jetson_check(jetson_release),
    ]


def python_check(version: tuple[int, int, int]) -> Check:
    shown = ".".join(map(str, version))
    if version >= (3, 12):
        return ok("python", shown)
    return fail(
        "python",
        f"{shown}; LeRobot 0.6 needs 3.12 or newer",
        "make a Python 3.12 environment (uv venv -p 3.12, or pyenv) and install Drift there (make setup)",
    )


def packages_check() -> Check:
    versions = {}
    for name in ("lerobot", "lerobot_policy_drift", "onnx"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            return fail(
                "packages", f"{name} is not installed", "pip install -e . in the Drift checkout (make setup)"
            )
    return ok("packages", ", ".join(f"{k} {v}" for k, v in versions.items()))


def onnxruntime_checks(builds: list[str]) -> list[Check]:
    """The installed builds (two of them overwrite each other), then each provider of ``--ort-provider
    auto`` that this build lists, started for real on a one-node graph."""
    if not builds:
        return [
            fail("onnxruntime", "not installed", "pip install onnxruntime (or onnxruntime-gpu on NVIDIA)")
        ]
    import onnxruntime as ort

    if len(builds) > 1:
        first = fail(
            "onnxruntime",
            f"{' and '.join(builds)} are both installed; they write the same package, so one shadows the other",
            f"pip uninstall -y {' '.join(builds)} && pip install {builds[-1]}",
        )
    else:
        first = ok("onnxruntime", f"{builds[0]} {ort.__version__}")
    listed = set(ort.get_available_providers())
    loaded, broken = [], []
    for provider in AUTO_PROVIDERS:
        if ORT_PROVIDERS[provider] not in listed:
            continue
        try:
            provider_session(_one_node_graph(), provider)
        except ProviderError as err:
            broken.append(f"{provider}: {err}")
            continue
        loaded.append(provider)
    if broken:
        providers = Check(
            "onnxruntime providers",
            "warn",
            f"load: {', '.join(loaded) or 'none'}; listed but failing: {'; '.join(broken)}",
            "install the CUDA / cuDNN / TensorRT libraries this onnxruntime-gpu was built for, "
            "or run with --ort-provider cpu",
        )
    else:
        providers = ok(
            "onnxruntime providers",
            f"load: {', '.join(loaded)} (--ort-provider auto tries them in this order)",
        )
    return [first, providers]


def _one_node_graph() -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # every onnxruntime from 1.14 on reads it
    return model.SerializeToString()


def torch_check() -> Check:
    try:
        import torch
    except ImportError:
        return fail("torch", "not installed", "pip install torch (LeRobot needs it)")
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append(f"cuda ({torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda})")
    if torch.backends.mps.is_available():
        devices.append("mps (Apple silicon)")
    return ok("torch", f"{torch.__version__}; devices: {', '.join(devices)}")


def tensorrt_check() -> Check:
    if importlib.util.find_spec("tensorrt") is None:
        return Check("tensorrt", "skip", "not installed (only --backend tensorrt needs it)")
    import tensorrt

    return ok("tensorrt", tensorrt.__version__)


def jetson_check(release_file: Path) -> Check:
    """JetPack 6 (L4T R36) ships Python 3.10, which LeRobot 0.6 cannot use; JetPack 7 can."""
    if not release_file.exists():
        return Check("jetson", "skip", "not a Jetson")
    text = release_file.read_text(errors="replace")
    found = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    if not found:
        return Check("jetson", "warn", f"{release_file} does not say its L4T release: {text[:80]!r}")
    major, revision = int(found[1]), found[2]
    l4t = f"L4T R{major}.{revision}"
    if major >= JETPACK_7_L4T:
        return ok("jetson", f"{l4t} (JetPack 7): Python 3.12, CUDA 13; install path in the README")
    return fail(
        "jetson",
        f"{l4t} (JetPack {6 if major == 36 else 5} or older): its Python is 3.10 or older, and LeRobot 0.6 needs 3.12",
        "flash JetPack 7.2 (L4T R39.2), then follow the README's Jetson install path",
    )
