"""Charging ONNX Runtime profiler events to the policy's parts (pure: synthetic events)."""

import pytest

from lerobot_policy_drift.export.graph_profile import PARTS, part_of, summarize


def _kernel(name: str, op: str, ts: int, dur_us: float) -> dict:
    return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur_us, "args": {"op_name": op}}


def _run(ts: int) -> dict:
    return {"cat": "Session", "name": "model_run", "ts": ts, "dur": 900}


def test_nodes_are_charged_by_the_module_that_exported_them():
    assert part_of("/rgb_encoder.1/backbone/backbone.4/backbone.4.0/conv1/Conv", "Conv") == "vision encoder"
    assert part_of("/unet/down_modules.0.0/conv1/block/block.0/Conv", "Conv") == "U-Net"
    assert part_of("ReorderOutput_12", "ReorderOutput") == "layout reorders"
    assert part_of("Transpose_token_7", "Transpose") == "layout reorders"  # ORT's NHWC, INT8 graphs
    assert part_of("/Transpose_1", "Transpose") == "glue"  # one the policy itself exported
    assert part_of("/Mul_3", "Mul") == "glue"


def test_warm_up_runs_are_left_out_and_each_figure_is_a_median_over_calls():
    events = [_run(0), _kernel("/unet/a/Conv", "Conv", 10, 5000.0)]  # warm-up: left out
    for start, unet_us in ((1000, 600.0), (2000, 700.0), (3000, 9000.0)):  # the last call stalled
        events += [
            _run(start),
            _kernel("/rgb_encoder.0/x/Conv", "Conv", start + 1, 400.0),
            _kernel("/unet/y/Conv", "Conv", start + 2, unet_us),
            _kernel("/unet/y/Softplus", "Softplus", start + 3, 100.0),
            _kernel("ReorderInput_1", "ReorderInput", start + 4, 50.0),
            _kernel("/Div", "Div", start + 5, 10.0),
            {"cat": "Node", "name": "/unet/y/Conv_fence_before", "ts": start + 2, "dur": 0, "args": {}},
        ]
    prof = summarize(events, calls=3, wall_ms=1.5, plain_wall_ms=1.2)
    assert list(prof.parts_ms) == list(PARTS)
    assert prof.parts_ms == pytest.approx(
        {"vision encoder": 0.4, "U-Net": 0.8, "layout reorders": 0.05, "glue": 0.01}
    )
    assert list(prof.ops_ms) == ["Conv", "Softplus", "ReorderInput", "Div"]  # largest first
    assert prof.ops_ms["Conv"] == pytest.approx(1.1)
    assert prof.kernels_ms == pytest.approx(1.26)
    assert prof.outside_kernels_ms == pytest.approx(1.5 - 1.26)


def test_asking_for_more_calls_than_were_profiled_is_an_error():
    with pytest.raises(ValueError, match="holds 1 runs, fewer than the 2"):
        summarize([_run(0)], calls=2, wall_ms=1.0, plain_wall_ms=1.0)
