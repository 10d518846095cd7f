"""The closed-loop benchmark's bookkeeping: the summary across training seeds (mean ± sample std
per row) and the checkpoints a training curve (``--eval-every``) evaluates."""

import pytest

from benchmarks.closed_loop import checkpoints, seed_summary


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


def test_a_training_curve_evaluates_every_saved_checkpoint_or_says_what_is_missing(tmp_path):
    assert checkpoints(tmp_path, 2000, None) == {"": tmp_path / "checkpoints" / "last" / "pretrained_model"}
    for step in (500, 1000):
        (tmp_path / "checkpoints" / f"{step:06d}" / "pretrained_model").mkdir(parents=True)
    assert list(checkpoints(tmp_path, 1000, 500)) == ["@500", "@1000"]
    with pytest.raises(
        SystemExit, match="no checkpoint at step 1500: it was trained without --eval-every 500"
    ):
        checkpoints(tmp_path, 2000, 500)
