"""The README's main job, on the emulated SO-100 (no hardware): demos → train → export → run.

1. record: a scripted operator moves the emulated leader arm to one of two targets (chosen at random
   each episode, so the data is bimodal; ``--task one-target``: the precision task of
   ``robots.tasks``, one target and half the tolerance); the follower follows through LeRobot's
   teleoperation path (leader ``get_action`` → follower ``send_action``); ``EpisodeRecorder``
   writes camera frames, state and action as a ``LeRobotDataset``;
2. train: ``lerobot-train --policy.type=drift`` on it (CPU);
3. export: ``drift-export`` (parity-gated ONNX bundle);
4. run: ``drift-run`` on a fresh emulated arm, teleop-first: per episode the operator holds the
   leader at rest (the follower follows), two new targets appear, control goes to the policy
   (``auto`` on the control pipe) for a few seconds, the outcome is read from the arm's own joint
   state (``robots.tasks.outcome``), and the operator takes control back (``teleop``);
5. prints success rate, which target was reached, misses, the tip's final distance to the nearest
   target (p50 / p90), and drift-run's latency summary.

Artifacts land in ``--out``; re-running reuses the dataset, checkpoint and bundle unless ``--fresh``.
"""

import argparse
import contextlib
import json
import math
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from lerobot_policy_drift.demos.folders import claim_folder, empty_folder
from lerobot_policy_drift.demos.train import STREAMING_ARGS, train_policy
from lerobot_policy_drift.robots.emulator import EmulatedRig
from lerobot_policy_drift.robots.kinematics import PITCH_JOINTS
from lerobot_policy_drift.robots.leader_scripts import Hold
from lerobot_policy_drift.robots.rig import CameraPlan
from lerobot_policy_drift.robots.scene import joint_angles
from lerobot_policy_drift.robots.tasks import (
    TASKS,
    ReachTask,
    correction_weight,
    operator_motion,
    scene_objects,
    ticks_for,
    tip_gap,
)

FPS = 10  # dataset and policy rate
LOOP_FPS = 30  # drift-run plays the chunks interpolated at 3x
CAMERA = CameraPlan(name="front", width=64, height=48, fps=30)
REPO_ID = "local/drift_reach"
MOVE_S, HOLD_S, RESET_S = 1.5, 1.0, 1.0
# DART demonstrations (``record``'s ``command_noise``): the follower is sent off its goal and back, so
# the recording shows the corrections a perfect operator never makes: 91.2 ± 6.7 % over five training
# seeds against 86.0 ± 4.9 % for a perfect operator, better on three of the five; σ = 0.2 did no
# better (BENCHMARKS §7.10, §7.11).
COMMAND_NOISE = 0.1
# The training recipe (shared with benchmarks/closed_loop.py, which compares policies on it).
BATCH_SIZE = 16
TRAIN_ARGS = (
    "--policy.n_obs_steps=2",
    "--policy.horizon=16",
    "--policy.n_action_steps=8",
    "--policy.down_dims=[64,128]",
    "--policy.spatial_softmax_num_keypoints=16",
    "--policy.optimizer_lr=3e-4",
    "--policy.scheduler_warmup_steps=100",
)
# 2 ResNet stages: an 8×6 keypoint grid on the 64×48 camera instead of 2×2 (see DriftConfig).
DRIFT_ARGS = ("--policy.vision_backbone_stages=2",)
# The lean policy make demo trained from 2026-12-01 to 2026-12-04 (benchmarks/closed_loop.py's
# drift-lean* rows): one ResNet stage (a 16×12 grid) and one observation frame, a training step about
# 1.7× cheaper (BENCHMARKS §7.6; benchmarks/train_step.py --demo measures the ratio). At its budget
# no lever took it past ~91 % (§7.8–§7.12).
LEAN_ARGS = ("--policy.vision_backbone_stages=1", "--policy.n_obs_steps=1")
# Each chunk continues the plan in progress (its remaining actions as a prefix): one frame does not
# tell which way the arm is heading, the plan does. Fewer reaches stop between the targets (§7.6).
PREFIX_ARGS = ("--policy.prefix_conditioning=true",)
# The noise skip's gain trains at 10× the learning rate (DriftConfig's default since §7.7; named
# here so a checkpoint trained before it is not reused as this one): at 1× AdamW could not shrink
# it fast enough, and the U-Net was left cancelling noise, which cost precision (50 → 90 %, §7.7).
GAIN_ARGS = ("--policy.noise_gain_lr_scale=10",)
# What make demo trains: the benchmark recipe's policy (two ResNet stages, two frames), read through
# the streaming data path (every frame read once per pass; map-style decodes each again per action
# step, §7.3), on DEMOS DART demonstrations: 98.0 % over three training seeds where the lean policy
# on 40 stays near 91 %, and the stream makes it fit the demo's minutes (BENCHMARKS §7.12).
DEMO_ARGS = (*TRAIN_ARGS, *DRIFT_ARGS, *GAIN_ARGS, *STREAMING_ARGS)
DEMOS = 60


def perturbed(action: dict[str, float], offsets: dict[str, float] | None, t: float) -> dict[str, float]:
    """``action`` (LeRobot's SO-100 degrees) with ``offsets`` (radians per joint) added at their
    ``correction_weight`` for ``t`` seconds into the reach; ``action`` itself without offsets."""
    if not offsets:
        return action
    weight = correction_weight(t, MOVE_S, HOLD_S)
    return {
        key: value + math.degrees(offsets.get(key.removesuffix(".pos"), 0.0)) * weight
        for key, value in action.items()
    }


def follower_angles(rig: EmulatedRig) -> dict[str, float]:
    names = {servo_id: name for name, servo_id in rig.plan.follower.motors.items()}
    present = {names[i]: s["Present_Position"] for i, s in rig.state().items()}
    return joint_angles(present, rig.plan.follower.calibration)


def demonstrations(seed: int, task: ReachTask):
    """The targets and the one the operator reaches, per demonstration ``record`` makes with
    ``seed``, in order (endless): an offline measurement redraws a recorded scene from them."""
    rng = np.random.default_rng(seed)
    while True:
        targets = task.sample(rng)
        yield targets, targets[int(rng.integers(len(targets)))]


def record(
    root: Path,
    episodes: int,
    run_dir: Path,
    seed: int,
    task: ReachTask = TASKS["two-targets"],
    command_noise: float = 0.0,
) -> None:
    """Record ``episodes`` demonstrations of ``task`` into ``root``, or reuse the dataset there if
    it holds that many of that task (another task's dataset is refused: it would train the wrong
    skill; another count is refused too: the demo recorded 40 until it trained on 60).

    ``command_noise`` (radians, > 0): DART (Laskey et al., 2017). Each demonstration draws an offset
    per pitch joint (normal, this standard deviation; its own random stream, so the layouts stay
    those of ``seed``) that the follower is sent on top of the operator's command, growing over
    the reach and removed in the first half of the hold (``robots.tasks.correction_weight``),
    while the dataset records the operator's command: the policy sees the arm off its goal
    together with the action that brings it back, which a perfect operator never shows. It is
    kept beside LeRobot's metadata (``meta/drift_recording.json``; a dataset without it was
    recorded with none), and a dataset recorded with another is refused, as another task's is."""
    if not command_noise >= 0:
        raise SystemExit(f"record: command noise is a standard deviation in radians, not {command_noise}.")
    how = root / "meta" / "drift_recording.json"
    if (root / "meta" / "info.json").exists():
        from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

        meta = LeRobotDatasetMetadata(REPO_ID, root=root)
        if (have := meta.total_episodes) < episodes or meta.tasks is None:
            raise SystemExit(
                f"record: {root} holds only {have} of {episodes} demonstrations (a recording stopped "
                "early, or a smaller one); nothing was changed. Run again with --fresh, or give another "
                "dataset folder."
            )
        if have > episodes:
            raise SystemExit(
                f"record: {root} holds {have} demonstrations, not {episodes}; nothing was changed. Ask for "
                f"{have} to use it (make demo's --episodes, a benchmark's --demos), or give another "
                "dataset folder (or --fresh)."
            )
        recorded = list(meta.tasks.index)
        if task.instruction not in recorded:
            raise SystemExit(
                f"record: {root} holds demonstrations of {recorded}, not of the {task.name} task "
                f"({task.instruction!r}); nothing was changed. Give another dataset folder (or --fresh)."
            )
        noise = json.loads(how.read_text())["command_noise"] if how.exists() else 0.0
        if noise != command_noise:
            raise SystemExit(
                f"record: {root} holds demonstrations recorded with command noise {noise}, not "
                f"{command_noise}; nothing was changed. Give another dataset folder (or --fresh)."
            )
        print(f"record: reusing {root}")
        return
    from lerobot.robots.utils import make_robot_from_config
    from lerobot.teleoperators.utils import make_teleoperator_from_config

    from lerobot_policy_drift.runtime.clock import TickClock
    from lerobot_policy_drift.runtime.recording import EpisodeRecorder

    plan = demonstrations(seed, task)
    with EmulatedRig.start("so100", run_dir, leader=True, cameras=[CAMERA]) as rig:
        calibration = rig.plan.leader.calibration
        rest = Hold(tuple(ticks_for({}, calibration)))
        robot = make_robot_from_config(rig.follower_config())
        leader = make_teleoperator_from_config(rig.leader_config())
        robot.connect()
        leader.connect()
        recorder = EpisodeRecorder(root, REPO_ID, FPS, robot, task=task.instruction)
        counts = {"left": 0, "right": 0}
        interrupted = False

        noise_rng = np.random.default_rng([seed, 1])

        def teleop(seconds: float, keep: bool, offsets: dict[str, float] | None = None) -> None:
            clock = TickClock(FPS)  # drift-run's own fixed-rate clock
            for tick in range(int(round(seconds * FPS))):
                clock.wait()
                obs = robot.get_observation()
                action = leader.get_action()
                sent = robot.send_action(perturbed(action, offsets, tick / FPS))
                if keep:
                    recorder.add(obs, action if offsets else sent)

        try:
            for episode in range(episodes):
                targets, goal = next(plan)
                rig.set_objects(scene_objects(targets))  # before the reset: no stale frame recorded
                rig.set_leader_script(rest)
                teleop(RESET_S, keep=False)
                rig.set_leader_script(operator_motion({}, goal.angles, calibration, MOVE_S, HOLD_S))
                offsets = None
                if command_noise > 0:
                    draw = noise_rng.normal(0.0, command_noise, len(PITCH_JOINTS))
                    offsets = dict(zip(PITCH_JOINTS, draw, strict=True))
                teleop(MOVE_S + HOLD_S, keep=True, offsets=offsets)
                recorder.end_episode()
                reached = task.outcome(follower_angles(rig), targets)
                counts[goal.side] += 1
                print(
                    f"record: episode {episode + 1}/{episodes}: operator went {goal.side}, follower {reached}"
                )
            recorder.finalize()
            how.write_text(json.dumps({"command_noise": command_noise}))
        except KeyboardInterrupt:
            interrupted = True
        finally:
            for device in (leader, robot):  # a Ctrl-C mid-packet may leave half a reply on the bus
                with contextlib.suppress(*((Exception,) if interrupted else ())):
                    device.disconnect()
    if interrupted:
        raise SystemExit(
            f"record: stopped (Ctrl-C) after {sum(counts.values())} of {episodes} demonstrations; the "
            f"emulated arms are stopped, and {root} holds an unfinished recording: run again with "
            "--fresh (or give another folder)."
        )
    print(f"record: {episodes} episodes ({counts['left']} left, {counts['right']} right) in {root}")


def export(ckpt: Path, dataset: Path, bundle: Path, **options) -> None:
    """drift-export (``options``: e.g. ``fp16=True``), unless a valid bundle is already there."""
    from lerobot_policy_drift.export.bundle import export_bundle
    from lerobot_policy_drift.export.manifest import BundleError, BundleManifest

    try:
        BundleManifest.load(bundle)
        print(f"export: reusing {bundle}")
        return
    except BundleError as err:
        reason = str(err)
    print(f"export: drift-export --ckpt {ckpt} --out {bundle} ({reason})")
    export_bundle(ckpt, bundle, dataset_root=dataset, force=True, **options)


def _send(pipe: Path, command: str) -> None:
    fd = os.open(pipe, os.O_WRONLY)
    try:
        os.write(fd, f"{command}\n".encode())
    finally:
        os.close(fd)


def evaluate(
    out: Path, episodes: int, seed: int, episode_s: float, task: ReachTask = TASKS["two-targets"], **policy
) -> tuple[dict, list[float], dict]:
    """drift-run, teleop-first, with ``episodes`` autonomous episodes of ``task``; (outcomes, the
    tip's final distance to the nearest target per episode, run report).

    ``policy``: the RunConfig fields naming it (``bundle=…``, or ``backend="torch", policy=…``).
    Outcomes count ``left`` / ``right`` / ``miss``, and ``between`` (misses stopped between the
    targets, ``robots.tasks.between``)."""
    from lerobot_policy_drift.runtime.cli import NOTHING_CONNECTED, REFUSALS
    from lerobot_policy_drift.runtime.config import RunConfig
    from lerobot_policy_drift.runtime.runner import Runner

    rng = np.random.default_rng(seed + 1)
    pipe = out / "control"
    with EmulatedRig.start("so100", out / "rig", leader=True, cameras=[CAMERA]) as rig:
        calibration = rig.plan.leader.calibration
        rig.set_leader_script(Hold(tuple(ticks_for({}, calibration))))
        config = RunConfig.for_rig(
            rig,
            leader=True,
            fps=LOOP_FPS,
            mode="teleop-first",
            control_pipe=pipe,
            max_speed=150.0,
            report_dir=out / "report",
            status=False,
            **policy,
        )
        runner = Runner(config)
        result: dict = {}

        def run() -> None:
            try:
                result["report"] = runner.run()
            except REFUSALS as err:  # e.g. the buses too slow for the rate: told after the rig stops
                result["refused"] = err

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        while not (pipe.exists() and runner.monitor.tick_times) and thread.is_alive():
            if time.monotonic() > deadline:
                raise RuntimeError("drift-run did not start within 120 s")
            time.sleep(0.1)
        counts = {"left": 0, "right": 0, "miss": 0, "between": 0}
        gaps = []
        for episode in range(episodes):
            if not thread.is_alive():
                break
            rig.set_leader_script(Hold(tuple(ticks_for({}, calibration))))  # operator: back to rest
            time.sleep(RESET_S + config.handover_s)
            targets = task.sample(rng)
            rig.set_objects(scene_objects(targets))
            time.sleep(0.3)
            _send(pipe, "auto")
            time.sleep(episode_s)
            angles = follower_angles(rig)
            reached = task.outcome(angles, targets)
            counts[reached] += 1
            gap, stopped_between = tip_gap(angles, targets), task.between(angles, targets)
            counts["between"] += stopped_between
            gaps.append(gap)
            kind = f"{reached}{' (between)' * stopped_between}"
            print(f"run: episode {episode + 1}/{episodes}: {kind}, tip {gap:.3f} from the nearest target")
            _send(pipe, "teleop")
        if thread.is_alive():
            _send(pipe, "stop")
        thread.join(timeout=60)
    if err := result.get("refused"):
        raise SystemExit(
            f"run: drift-run refused to start: {err} Arm: {getattr(err, 'arm_state', NOTHING_CONNECTED)}. "
            f"The dataset, checkpoint and bundle are kept: run the demo again to retry (it reuses them)."
        )
    return counts, gaps, result.get("report", {})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/arm_demo"))
    parser.add_argument("--episodes", type=int, default=DEMOS, help="demonstrations to record")
    parser.add_argument("--steps", type=int, default=2000, help="lerobot-train steps")
    parser.add_argument("--eval-episodes", type=int, default=10, help="autonomous episodes in drift-run")
    parser.add_argument("--episode-s", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--task",
        choices=TASKS,
        default="two-targets",
        help="two-targets (bimodal: the mode choice and the reach) or one-target (half the tolerance: precision)",
    )
    parser.add_argument(
        "--command-noise",
        type=float,
        default=COMMAND_NOISE,
        help="radians: DART demonstrations (see record); 0 records a perfect operator",
    )
    parser.add_argument("--fresh", action="store_true", help="delete earlier artifacts and start over")
    args = parser.parse_args(argv)
    lock = claim_folder(
        args.out, "arm_demo", "Wait for that demo to finish, or give another folder (OUT=… / --out)."
    )
    if args.fresh:
        empty_folder(args.out, keep=lock)
    t0 = time.perf_counter()
    task = TASKS[args.task]
    dataset = args.out / "dataset"
    record(dataset, args.episodes, args.out / "record_rig", args.seed, task, args.command_noise)
    ckpt = train_policy(
        "drift",
        dataset,
        REPO_ID,
        args.out / "train",
        args.steps,
        BATCH_SIZE,
        *DEMO_ARGS,
    )
    export(ckpt, dataset, args.out / "bundle")
    run_dir = args.out / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir()
    counts, gaps, report = evaluate(
        run_dir, args.eval_episodes, args.seed, args.episode_s, task, bundle=args.out / "bundle"
    )

    done = counts["left"] + counts["right"] + counts["miss"]
    table = Table(title=f"DriftPolicy on the emulated SO-100, {task.name} reach: {done} autonomous episodes")
    columns = ("success", "left / right", "missed (between targets)", "tip gap p50 / p90", "inference p50 ms")
    for col in (*columns, "missed ticks"):
        table.add_column(col, justify="right")
    inf = report.get("inference_ms", {}).get("p50")
    gap_p50, gap_p90 = np.percentile(gaps, [50, 90]) if gaps else (float("nan"),) * 2
    table.add_row(
        f"{(counts['left'] + counts['right']) / max(done, 1):.0%}",
        f"{counts['left']} / {counts['right']}",
        f"{counts['miss']} ({counts['between']})",
        f"{gap_p50:.3f} / {gap_p90:.3f} (tolerance {task.tolerance:.2f})",
        f"{inf:.1f}" if inf is not None else "-",
        str(report.get("missed_ticks", "-")),
    )
    console = Console()
    console.print(table)
    if report:
        from lerobot_policy_drift.runtime.monitor import print_summary

        print_summary(report)
    outcomes = {k: counts[k] for k in ("left", "right", "miss")}
    summary = {
        "task": task.name,
        "outcomes": outcomes,
        "between": counts["between"],
        "episodes": done,
        "tip_gaps": [round(g, 4) for g in gaps],
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"artifacts: {args.out.resolve()} (dataset/, train/checkpoints/last/pretrained_model, bundle/, "
        f"run/report/report.json, run/report/latency.png)"
    )
    print(f"total time: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
