"""The closed-loop benchmark's summary across training seeds (mean ± sample std per row)."""

import pytest

from benchmarks.closed_loop import seed_summary


def _result(left: int, right: int, miss: int, between: int) -> dict:
    return {
        "outcomes": {"left": left, "right": right, "miss": miss, "between": between},
        "episodes": left + right + miss,
    }


def test_rows_are_grouped_by_seed_and_unseeded_rows_left_out():
    results = {
        "drift": _result(5, 5, 0, 0),  # no --train-seed: not part of the summary
        "drift-seed1": _result(3, 3, 4, 2),
        "drift-seed2": _result(4, 4, 2, 0),
        "drift-prefix-seed1": _result(5, 4, 1, 1),
    }
    summary = seed_summary(results)
    assert set(summary) == {"drift", "drift-prefix"}
    drift = summary["drift"]
    assert drift["seeds"] == [1, 2] and drift["success"] == [0.6, 0.8]
    assert drift["success_mean"] == pytest.approx(0.7)
    assert drift["success_std"] == pytest.approx(0.1414, abs=1e-4)  # sample std, ddof 1
    assert drift["between_mean"] == pytest.approx(0.1)
    assert summary["drift-prefix"]["success_std"] != summary["drift-prefix"]["success_std"]  # one seed: nan
