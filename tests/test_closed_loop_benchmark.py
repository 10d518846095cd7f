"""The closed-loop benchmark's bookkeeping: the summary across training seeds (mean ± sample std
per row), the checkpoints a training curve (``--eval-every``) evaluates, and the configuration
each drift row trains."""

import fcntl
import os

import pytest

from benchmarks.closed_loop import (
    DP_SAMPLERS,
    DRIFT_ROWS,
    HOLD_ROWS,
    checkpoints,
    eval_steps,
    main,
    result_key,
    runnable,
    seed_summary,
    training,
)
from lerobot_policy_drift.demos.train import STREAMING_ARGS


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
        "drift-seed1@6000": _result(5, 4, 1, 0),  # checkpoints of a curve: grouped per step
        "drift-seed2@6000": _result(5, 5, 0, 0),
    }
    summary = seed_summary(results)
    assert set(summary) == {"drift", "drift-prefix", "drift@6000"}
    assert summary["drift@6000"]["seeds"] == [1, 2] and summary["drift@6000"]["success"] == [0.9, 1.0]
    drift = summary["drift"]
    assert drift["seeds"] == [1, 2] and drift["success"] == [0.6, 0.8]
    assert drift["episodes"] == [10, 10]  # each seed's own count, as the printed summary shows
    assert drift["success_mean"] == pytest.approx(0.7)
    assert drift["success_std"] == pytest.approx(0.1414, abs=1e-4)  # sample std, ddof 1
    assert drift["between_mean"] == pytest.approx(0.1)
    assert summary["drift-prefix"]["success_std"] != summary["drift-prefix"]["success_std"]  # one seed: nan


def test_a_floored_row_is_keyed_and_summarized_apart_from_the_row_at_its_own_speed():
    assert result_key("dp10", 2, "@16000") == "dp10-seed2@16000"
    assert result_key("dp10", 2, "@16000", 220.0) == "dp10-floor220ms-seed2@16000"
    assert result_key("dp10", None, "", 37.5) == "dp10-floor37.5ms"
    results = {
        result_key("dp10", 2, "@16000"): _result(20, 23, 7, 3),
        result_key("dp10", 2, "@16000", 220.0): _result(15, 20, 15, 9),
    }
    summary = seed_summary(results)
    assert set(summary) == {"dp10@16000", "dp10-floor220ms@16000"}
    assert summary["dp10-floor220ms@16000"]["success"] == [0.7]


def test_a_training_curve_evaluates_every_saved_checkpoint_or_says_what_is_missing(tmp_path):
    assert eval_steps(2000, None, None) is None
    assert checkpoints(tmp_path, None) == {"": tmp_path / "checkpoints" / "last" / "pretrained_model"}
    for step in (500, 1000):
        (tmp_path / "checkpoints" / f"{step:06d}" / "pretrained_model").mkdir(parents=True)
    assert list(checkpoints(tmp_path, eval_steps(1000, 500, None))) == ["@500", "@1000"]
    with pytest.raises(SystemExit, match="no checkpoint at step 1500: .*without a checkpoint every 500"):
        checkpoints(tmp_path, eval_steps(2000, 500, None))


def test_single_steps_join_the_curve_and_stay_within_the_budget():
    assert eval_steps(8000, 2000, [1250]) == [1250, 2000, 4000, 6000, 8000]  # saved every 250
    assert eval_steps(2000, None, [1250, 1250]) == [1250]
    with pytest.raises(SystemExit, match="within 1..--steps"):
        eval_steps(1000, None, [1250])


LEVERS = {  # row → the DriftConfig fields it changes from the recipe
    "drift": {},
    "regression": {"num_samples_per_obs": 1, "noise_scale": 0.0},
    "drift4": {"vision_backbone_stages": 4},
    "drift-prefix": {"prefix_conditioning": True},
    "drift-ema": {"use_ema": True},
    "drift-g8": {"num_samples_per_obs": 8},
    "drift-lr1e-3": {"optimizer_lr": 1e-3},
    "drift-streaming": {},  # its lever is the data path, below
    "drift-lean": {"vision_backbone_stages": 1, "n_obs_steps": 1},  # on the streaming data path
    "drift-lean-prefix": {"vision_backbone_stages": 1, "n_obs_steps": 1, "prefix_conditioning": True},
    "drift-gain10": {"noise_gain_lr_scale": 10.0},
    "drift-lean-prefix-gain10": {
        "vision_backbone_stages": 1,
        "n_obs_steps": 1,
        "prefix_conditioning": True,
        "noise_gain_lr_scale": 10.0,
    },
    "drift-demo-lr1e-3": {
        "vision_backbone_stages": 1,
        "n_obs_steps": 1,
        "prefix_conditioning": True,
        "noise_gain_lr_scale": 10.0,
        "optimizer_lr": 1e-3,
    },
    "drift-demo-2frames": {
        "vision_backbone_stages": 1,
        "prefix_conditioning": True,
        "noise_gain_lr_scale": 10.0,
    },
    "drift-demo-2stages": {"n_obs_steps": 1, "prefix_conditioning": True, "noise_gain_lr_scale": 10.0},
    "drift-lean-gain10": {"vision_backbone_stages": 1, "n_obs_steps": 1, "noise_gain_lr_scale": 10.0},
    "drift-gain10-streaming": {"noise_gain_lr_scale": 10.0},  # on the streaming data path
    "drift-gain10-idp": {"noise_gain_lr_scale": 10.0, "expert_proximal_weight": 81.0},
    "drift-demo-crop": {
        "vision_backbone_stages": 1,
        "n_obs_steps": 1,
        "prefix_conditioning": True,
        "noise_gain_lr_scale": 10.0,
        "crop_shape": (42, 56),
    },
}
# row → its lerobot-train arguments outside the policy
STREAMED = (
    "drift-streaming",
    "drift-lean",
    "drift-lean-prefix",
    "drift-lean-prefix-gain10",
    "drift-demo-lr1e-3",
    "drift-demo-2frames",
    "drift-demo-2stages",
    "drift-lean-gain10",
    "drift-demo-crop",
    "drift-gain10-streaming",
)
DATA_LEVERS = {row: STREAMING_ARGS for row in STREAMED}


@pytest.mark.parametrize("row", sorted(DRIFT_ROWS))
def test_every_drift_row_trains_the_recipe_with_only_its_lever_changed(row):
    """Each drift row's lerobot-train arguments parse into a valid DriftConfig that differs from the
    recipe's in its lever alone (a lever repeating a recipe argument overrides it: the last wins)."""
    import draccus

    from lerobot_policy_drift.drift.configuration_drift import DriftConfig

    def parsed(row: str) -> dict:
        policy_type, _, args = training(row, 2000)
        assert policy_type == "drift"
        policy = [a for a in args if a.startswith("--policy.")]
        assert tuple(a for a in args if a not in policy) == DATA_LEVERS.get(row, ())
        config = draccus.parse(DriftConfig, args=[a.replace("--policy.", "--") for a in policy])
        return vars(config)

    recipe, lever = parsed("drift"), parsed(row)
    assert {k: v for k, v in lever.items() if recipe[k] != v} == LEVERS[row]


def test_a_hold_row_reuses_its_rows_training():
    for row, trained in HOLD_ROWS.items():
        assert training(row, 2000) == training(trained, 2000)  # same run folder, same arguments


@pytest.mark.parametrize("row", sorted(DP_SAMPLERS))
def test_a_sampler_row_runs_dp100s_weights_with_only_its_scheduler_changed(row, tmp_path):
    """dp10, dp-ddim100 and dp-ddpm10 share dp100's training and run its weights (linked, not
    copied) with a config LeRobot loads as a DiffusionConfig differing in scheduler and steps only."""
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig

    assert training(row, 2000) == training("dp100", 2000)
    ckpt = tmp_path / "checkpoints" / "last" / "pretrained_model"
    DiffusionConfig(num_inference_steps=100).save_pretrained(ckpt)
    (ckpt / "model.safetensors").write_bytes(b"weights")
    policy = runnable(row, ckpt, tmp_path / "dataset")
    assert policy["backend"] == "torch"
    variant = policy["policy"]
    assert (variant / "model.safetensors").resolve() == (ckpt / "model.safetensors").resolve()
    trained, sampled = (
        vars(PreTrainedConfig.from_pretrained(ckpt)),
        vars(PreTrainedConfig.from_pretrained(variant)),
    )
    assert {k for k, v in sampled.items() if trained[k] != v} <= {
        "noise_scheduler_type",
        "num_inference_steps",
    }
    assert (sampled["noise_scheduler_type"], sampled["num_inference_steps"]) == DP_SAMPLERS[row]


def test_a_second_run_on_the_same_folder_is_refused_and_changes_nothing(tmp_path):
    """While one run holds the folder, another is refused before it records, trains or writes."""
    holder_fd = os.open(tmp_path / ".closed_loop.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with pytest.raises(SystemExit, match=rf"in use by process {os.getpid()} .*one run per folder"):
            main(["--out", str(tmp_path), "--dataset", str(tmp_path / "dataset"), "--rows", "drift"])
    finally:
        os.close(holder_fd)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".closed_loop.lock"]
