"""drift-run's torch backend serves the policies SO-100 users train today (ACT with and without
temporal ensembling, VQ-BeT) as LeRobot's own ``select_action`` runs them, on the same contract
as a drift bundle; a type it cannot serve is refused in one line."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lerobot_policy_drift.demos.emulated_policy import untrained_checkpoint
from lerobot_policy_drift.demos.train import train_policy
from lerobot_policy_drift.export.manifest import GOLDEN_FILE
from lerobot_policy_drift.runtime.backends import BackendError, make_backend
from tests.emulator_helpers import ctrl_c, group_gone, wait_until
from tests.small_policies import SMALL_ACT, SMALL_VQBET


def _dataset(ckpt: Path) -> tuple[Path, str]:
    dataset = json.loads((ckpt / "train_config.json").read_text())["dataset"]
    return Path(dataset["root"]), dataset["repo_id"]


def _feeds(bundle: Path) -> dict[str, np.ndarray]:
    golden = np.load(bundle / GOLDEN_FILE)
    return {k.removeprefix("input."): golden[k][0] for k in golden.files if k.startswith("input.")}


def _frame(feeds: dict, t: int) -> dict[str, torch.Tensor]:
    """Time step ``t`` of the feeds as a LeRobot frame (images in [0, 1], as a robot's are)."""
    return {
        "observation.state": torch.from_numpy(feeds["observation.state"][:, t]),
        "observation.images.front": torch.from_numpy(feeds["observation.images.front"][:, t]).float() / 255,
    }


def _lerobot(ckpt: Path, policy_type: str):
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors

    policy = get_policy_class(policy_type).from_pretrained(ckpt).eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(ckpt))
    return policy, pre, post


@pytest.mark.parametrize("ensemble", [None, 0.01])
def test_an_act_checkpoint_runs_as_lerobot_runs_it(so100_policy, tmp_path, ensemble):
    """ACT sees the latest frame; without ensembling the chunk is the 8 actions ``select_action``
    plays, with it the whole 16-step prediction (whose first action ``select_action`` returns)."""
    ckpt, bundle = so100_policy
    root, repo = _dataset(ckpt)
    config = {**SMALL_ACT, **({"temporal_ensemble_coeff": ensemble, "n_action_steps": 1} if ensemble else {})}
    act = untrained_checkpoint(root, repo, tmp_path / "act", policy_type="act", **config)
    backend = make_backend("torch", None, act)
    c = backend.contract
    assert (c.n_obs_steps, c.n_action_steps, c.ensemble_coeff) == (1, 16 if ensemble else 8, ensemble)
    assert backend.name == "torch-cpu-act"
    feeds = _feeds(bundle)
    feeds = {
        k: v[:, -1:] if k.startswith("observation.") else v[:, :16] for k, v in feeds.items()
    }  # ACT's own contract: one observation step
    chunk = backend.infer(feeds)

    policy, pre, post = _lerobot(act, "act")
    frame = pre(_frame(feeds, 0))
    if ensemble:
        np.testing.assert_allclose(chunk, post(policy.predict_action_chunk(frame))[0].numpy(), atol=1e-4)
        np.testing.assert_allclose(chunk[0], post(policy.select_action(frame))[0].numpy(), atol=1e-4)
    else:
        expected = [post(policy.select_action(frame))[0].numpy() for _ in range(8)]
        np.testing.assert_allclose(chunk, np.stack(expected), atol=1e-4)


def test_a_vqbet_checkpoint_runs_its_observation_history_as_lerobot_does(so100_policy, tmp_path):
    """Two different frames in the history: the backend's chunk is the one ``select_action``
    computes once its queue holds them, in that order (VQ-BeT samples: same seed, same draw)."""
    from lerobot.utils.constants import ACTION

    ckpt, bundle = so100_policy
    root, repo = _dataset(ckpt)
    vqbet = untrained_checkpoint(root, repo, tmp_path / "vqbet", policy_type="vqbet", **SMALL_VQBET)
    backend = make_backend("torch", None, vqbet)
    assert (backend.contract.n_obs_steps, backend.contract.n_action_steps) == (2, 8)
    feeds = _feeds(bundle)
    assert not np.array_equal(feeds["observation.state"][:, 0], feeds["observation.state"][:, 1])
    torch.manual_seed(3)
    chunk = backend.infer(feeds)

    policy, pre, post = _lerobot(vqbet, "vqbet")
    with pytest.warns(UserWarning, match="pretrained Residual VQ"):  # untrained: LeRobot warns
        policy.select_action(pre(_frame(feeds, 0)))
    policy._queues[ACTION].clear()  # the next call computes a chunk from [frame 0, frame 1]
    torch.manual_seed(3)
    with pytest.warns(UserWarning, match="pretrained Residual VQ"):
        expected = [post(policy.select_action(pre(_frame(feeds, 1))))[0].numpy() for _ in range(8)]
    np.testing.assert_allclose(chunk, np.stack(expected), atol=1e-4)


def test_a_type_the_backend_cannot_serve_is_refused_in_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"type": "tdmpc"}))
    with pytest.raises(BackendError, match="holds a 'tdmpc' policy; only drift / diffusion / act / vqbet"):
        make_backend("torch", None, tmp_path)


def _cli(config: dict) -> list[str]:
    return [f"--policy.{k}={'null' if v is None else v}" for k, v in config.items()]


@pytest.mark.slow
@pytest.mark.parametrize(
    "policy_type, args",
    [
        ("act", _cli(SMALL_ACT)),
        ("act", _cli({**SMALL_ACT, "n_action_steps": 1, "temporal_ensemble_coeff": 0.01})),
        ("vqbet", _cli({**SMALL_VQBET, "n_vqvae_training_steps": 2})),
    ],
    ids=["act", "act-ensembled", "vqbet"],
)
def test_lerobot_trained_baselines_drive_the_emulated_arm(so100_policy, tmp_path, policy_type, args):
    """Checkpoints lerobot-train made (a few steps) run through drift-run on the emulated SO-100."""
    from lerobot_policy_drift.robots.emulator import EmulatedRig
    from lerobot_policy_drift.robots.rig import CameraPlan
    from lerobot_policy_drift.runtime.config import RunConfig
    from lerobot_policy_drift.runtime.runner import Runner

    root, repo = _dataset(so100_policy[0])
    ckpt = train_policy(policy_type, root, repo, tmp_path / "train", 4, 4, *args)  # 4 steps, batch 4
    camera = CameraPlan(name="front", width=64, height=48, fps=30)
    with EmulatedRig.start("so100", tmp_path / "rig", cameras=[camera]) as rig:
        before = rig.state()
        config = RunConfig.for_rig(
            rig,
            backend="torch",
            policy=ckpt,
            report_dir=tmp_path / "report",
            status=False,
            duration_s=3,
        )
        report = Runner(config).run()
        after = rig.state()
    assert report["stop_reason"] == "duration 3 s reached" and report["chunks"] >= 3
    assert any(after[i]["Present_Position"] != before[i]["Present_Position"] for i in before)
    if "temporal_ensemble_coeff=0.01" in " ".join(args):  # a chunk every policy step (10 Hz): ~30
        assert report["chunks"] >= 15


@pytest.mark.slow
def test_a_constant_rate_run_asked_for_more_steps_is_resumed(so100_policy, tmp_path):
    """ACT's learning rate is constant, so a finished run asked for more steps continues from its
    last checkpoint (LeRobot's ``--resume``: weights, optimizer state and data order) instead of
    starting again; the earlier checkpoints stay as they were."""
    from safetensors.torch import load_file

    root, repo = _dataset(so100_policy[0])
    run = tmp_path / "train"
    first = train_policy("act", root, repo, run, 2, 4, *_cli(SMALL_ACT))
    before = load_file(first.resolve() / "model.safetensors")
    resumed = train_policy("act", root, repo, run, 4, 4, *_cli(SMALL_ACT), save_every=2)
    state = run / "checkpoints" / "000004" / "training_state"
    assert json.loads((state / "training_step.json").read_text())["step"] == 4
    adam = load_file(state / "optimizer_state.safetensors")
    assert {float(v) for k, v in adam.items() if k.endswith("/step")} == {4.0}  # continued, not restarted
    after = load_file(run / "checkpoints" / "000002" / "pretrained_model" / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert json.loads((resumed / "train_config.json").read_text())["steps"] == 4
    timing = json.loads((run / "train_time.json").read_text())
    assert (timing["steps"], timing["resumed_from"]) == (4, 2)

    # Interrupted (Ctrl-C) after its step-2 checkpoint: the run is resumed to its budget, not
    # reused as if it had finished.
    shutil.rmtree(run / "checkpoints" / "000004")
    (run / "checkpoints" / "last").unlink()
    (run / "checkpoints" / "last").symlink_to("000002")
    train_policy("act", root, repo, run, 4, 4, *_cli(SMALL_ACT), save_every=2)
    assert json.loads((state / "training_step.json").read_text())["step"] == 4
    assert not (run / "train_time.json").exists()  # the interrupted part's time is unknown: no figure


@pytest.mark.slow
def test_a_ctrl_c_while_training_ends_in_one_line_and_keeps_the_last_checkpoint(so100_policy, tmp_path):
    """A terminal's Ctrl-C reaches the caller and lerobot-train together: one line says what was
    kept (the last checkpoint, for the same command to resume from), no traceback, no process left."""
    root, repo = _dataset(so100_policy[0])
    run = tmp_path / "train"
    call = f"train_policy('act', Path({str(root)!r}), {repo!r}, Path({str(run)!r}), 100000, 4, *{_cli(SMALL_ACT)!r}, save_every=2)"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from pathlib import Path; from lerobot_policy_drift.demos.train import train_policy; {call}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, as a terminal's foreground job
    )
    try:
        wait_until(lambda: (run / "checkpoints" / "last").exists() or proc.poll() is not None, timeout_s=300)
    except AssertionError:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.poll() is None, proc.communicate()[1]  # still training
    _, stderr = ctrl_c(proc)
    step = json.loads((run / "checkpoints" / "last" / "training_state" / "training_step.json").read_text())[
        "step"
    ]
    said = re.escape(f"train: stopped (Ctrl-C); {run} keeps its checkpoint of step {step}: the same command")
    assert re.search(said, stderr.strip().splitlines()[-1])
    wait_until(lambda: group_gone(proc.pid), timeout_s=10)  # no process left


def test_a_run_stopped_before_its_first_checkpoint_says_what_a_rerun_needs(tmp_path):
    """Stopped while writing its first checkpoint, the run folder exists without one, and
    lerobot-train refuses an existing folder without --resume: the line says to move it away."""
    from lerobot_policy_drift.demos.train import _kept

    run = tmp_path / "train"
    assert _kept(run) == "no checkpoint was saved yet: the same command again trains from the start."
    (run / "checkpoints" / "000002").mkdir(parents=True)
    assert (
        _kept(run)
        == f"{run} holds no complete checkpoint: move it away, then the same command trains from the start."
    )
