"""The GPU check's CPU side: the carried programs compute DriftGraph (the torch backend), their
device move leaves nothing on the CPU, and without a GPU the check says so and times the CPU,
importing neither LeRobot nor Drift's package (the GPU machine has neither)."""

import json
import subprocess
import sys

import pytest
import torch

from benchmarks import gpu_check
from benchmarks.gpu_check_prepare import export_program
from lerobot_policy_drift.demos.synthetic import SIZES, synthetic_checkpoint
from lerobot_policy_drift.export.graph import DriftGraph


def test_the_carried_program_computes_drift_graph(tmp_path):
    ckpt = synthetic_checkpoint(SIZES["small"], 1)
    blob, spec = export_program(ckpt)
    spec["file"] = "p.pt2.gz"
    (tmp_path / "p.pt2.gz").write_bytes(blob)
    assert len(blob) < 1 << 20 and spec["parameters"] > 10_000_000  # the weights travel as zeros
    program = gpu_check.load_program(tmp_path, spec)
    graph = DriftGraph(synthetic_checkpoint(SIZES["small"], 1))
    graph.load_state_dict(program.state_dict())  # the weights the device drew, in the policy itself
    inputs = gpu_check.inputs_for(spec)
    with torch.inference_mode():
        expected = graph(*inputs)
        carried = program(*inputs)
        assert torch.allclose(carried, expected, atol=1e-5) and carried.abs().max() > 0
        moved = gpu_check.to_device(program, torch.device("meta"))  # any CPU leftover would raise
        assert moved(*(t.to("meta") for t in inputs)).device.type == "meta"


def test_without_a_gpu_the_check_says_so_and_times_the_cpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is here: make gpu-check measures it")
    carry = tmp_path / "carry"
    prepared = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.gpu_check_prepare",
            "--out",
            str(carry),
            "--sizes",
            "small",
            "--cameras",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    code = (
        "import runpy, sys; ns = runpy.run_path('benchmarks/gpu_check.py'); rc = ns['main'](sys.argv[1:]); "
        "assert not any(m.startswith(('lerobot', 'lerobot_policy_drift')) for m in sys.modules), 'imported LeRobot'; "
        "sys.exit(rc)"
    )
    out = tmp_path / "gpu_check.json"
    run = subprocess.run(
        [sys.executable, "-c", code, "--carry", str(carry), "--out", str(out), "--cpu-calls", "3"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "no CUDA GPU here" in run.stdout and "GPU figures not measured" in run.stdout
    result = json.loads(out.read_text())
    assert result["environment"]["gpu"] is None and len(result["environment"]["not_measured"]) == 2
    (row,) = result["programs"]
    assert row["size"] == "small" and row["cpu"]["p50_ms"] > 0 and "cuda_eager" not in row
