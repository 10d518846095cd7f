"""``lerobot-train`` as the demos and benchmarks call it (CPU, offline), reusing a finished run."""

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from lerobot_policy_drift.drift.video_backend import video_backend

TRAIN_TIME = "train_time.json"  # in the run folder: wall-clock seconds of the lerobot-train command
STREAMING_ARGS = ("--dataset.streaming=true",)  # LeRobot's streaming dataset (BENCHMARKS §7.3)


def loader_workers(args: tuple[str, ...], num_workers: int) -> int:
    """The loader workers lerobot-train gets: LeRobot shards a streaming dataset over them, so
    streaming needs at least one (with 0 there is no shard to read)."""
    return max(num_workers, 1) if set(STREAMING_ARGS) <= set(args) else num_workers


def train_policy(
    policy_type: str,
    dataset: Path,
    repo_id: str,
    run_dir: Path,
    steps: int,
    batch_size: int,
    *policy_args: str,
    num_workers: int = 0,
    log: Path | None = None,
    save_every: int | None = None,
) -> Path:
    """The checkpoint (``pretrained_model/``) of a ``policy_type`` policy trained by LeRobot's own
    trainer (also saved every ``save_every`` steps); its output goes to the terminal, or to ``log``."""
    ckpt = run_dir / "checkpoints" / "last" / "pretrained_model"
    resume: tuple[str, ...] = ()
    done = 0  # steps a resumed run already has
    if ckpt.exists():
        done = _check_reusable(ckpt, dataset, steps, policy_args)
        if done == steps:
            print(f"train: reusing {ckpt}")
            return ckpt
        print(f"train: resuming {run_dir} from step {done} to {steps}")
        resume = ("--resume=true", f"--config_path={ckpt / 'train_config.json'}")
    fresh = (
        f"--policy.type={policy_type}",
        f"--dataset.repo_id={repo_id}",
        f"--dataset.root={dataset}",
        f"--dataset.video_backend={video_backend()}",
        "--policy.device=cpu",
        "--policy.push_to_hub=false",
        *policy_args,
        f"--batch_size={batch_size}",
    )
    cmd = [
        str(Path(sys.executable).parent / "lerobot-train"),
        *(resume or fresh),  # a resumed run keeps its own configuration
        f"--steps={steps}",
        f"--save_freq={save_every or steps}",
        f"--log_freq={max(1, steps // 10)}",
        f"--num_workers={loader_workers(policy_args, num_workers)}",  # a resumed run too
        f"--output_dir={run_dir}",
        "--wandb.enable=false",
    ]
    print("train: " + " ".join(cmd))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    start = time.perf_counter()
    _run_trainer(cmd, env, log, run_dir)
    seconds = time.perf_counter() - start  # the whole command: start-up and the save included
    timing = {"seconds": seconds, "steps": steps}
    if done:  # the resumed part adds to the finished run's time
        first = run_dir / TRAIN_TIME
        earlier = json.loads(first.read_text()) if first.is_file() else {}
        if earlier.get("steps") != done:  # an interrupted run: its time is unknown, so none is kept
            first.unlink(missing_ok=True)
            return ckpt
        timing = {"seconds": earlier["seconds"] + seconds, "steps": steps, "resumed_from": done}
    (run_dir / TRAIN_TIME).write_text(json.dumps(timing))
    return ckpt


def _run_trainer(cmd: list[str], env: dict, log: Path | None, run_dir: Path) -> None:
    """Run lerobot-train to its end, or stop it in one line. A terminal's Ctrl-C reaches the whole
    foreground group: the trainer starts with SIGINT ignored (so it prints no traceback of its own)
    and is terminated from here; its checkpoints stay for a re-run to resume from."""
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(log, "w")) if log is not None else None
        main = threading.current_thread() is threading.main_thread()  # only it may set handlers
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None  # kept through exec
        try:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None)
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            raise SystemExit(f"train: stopped (Ctrl-C); {_kept(run_dir)}") from None
    if code != 0:
        said = f"its output in {log}" if log is not None else "its output above"
        raise SystemExit(
            f"train: lerobot-train failed (exit status {code}); {said} says why. {_kept(run_dir)}"
        )


def _kept(run_dir: Path) -> str:
    """What an unfinished training left, and what a re-run of the same command does with it."""
    state = run_dir / "checkpoints" / "last" / "training_state" / "training_step.json"
    if state.is_file():
        step = json.loads(state.read_text())["step"]
        return f"{run_dir} keeps its checkpoint of step {step}: the same command again resumes from it."
    if run_dir.exists():  # stopped while writing its first checkpoint: lerobot-train would refuse it
        return f"{run_dir} holds no complete checkpoint: move it away, then the same command trains from the start."
    return "no checkpoint was saved yet: the same command again trains from the start."


def _check_reusable(ckpt: Path, dataset: Path, steps: int, args: tuple[str, ...] = ()) -> int:
    """The steps a run's last checkpoint holds. A finished run is reused for its own dataset, step
    budget and the settings ``args`` ask for (``--a.b=value``, as its train_config.json holds them); it is resumed (LeRobot's ``--resume``: weights, optimizer state, data order) when
    it was interrupted before its budget, or asked for a larger budget with a constant learning
    rate: then the longer run is one training of that budget (only the random draws after the
    resume differ, as another seed's would). Anything else would report one training under
    another's name."""
    trained = json.loads((ckpt / "train_config.json").read_text())
    state = ckpt.parent / "training_state" / "training_step.json"
    at = json.loads(state.read_text())["step"] if state.is_file() else trained["steps"]
    was = (Path(trained["dataset"]["root"]).resolve(), trained["steps"])
    same_data = was[0] == dataset.resolve()
    if same_data and (was[1] == steps or (was[1] < steps and trained["scheduler"] is None)):
        differing = _settings_differing(trained, args)
        if not differing:
            return at
        raise SystemExit(
            f"train: {ckpt.parents[2]} was trained with other settings ({'; '.join(differing)}); it was "
            "left as it is. Move it away (or give another output folder) to train this one."
        )
    extending = same_data and was[1] < steps  # refused above only for a learning-rate schedule
    why = " (its learning-rate schedule spans its own budget, so it cannot be extended)" if extending else ""
    raise SystemExit(
        f"train: {ckpt.parents[2]} was trained on {was[0]} for {was[1]} steps, not on "
        f"{dataset.resolve()} for {steps}{why}; it was left as it is. Move it away (or give another "
        "output folder) to train this one."
    )


_UNSET = object()  # a key train_config.json does not have


def _settings_differing(trained: dict, args: tuple[str, ...]) -> list[str]:
    """Each ``--a.b=value`` of ``args`` (the last of a key wins, as in lerobot-train) whose value the
    run's ``train_config.json`` does not hold."""
    asked = dict(arg.removeprefix("--").partition("=")[::2] for arg in args if "=" in arg)
    differing = []
    for key, raw in asked.items():
        held = trained
        for part in key.split("."):
            held = held.get(part, _UNSET) if isinstance(held, dict) else _UNSET
        try:
            wanted = json.loads(raw)
        except json.JSONDecodeError:
            wanted = raw  # a bare string: cpu, DDIM, …
        if held != wanted:
            has = "no such setting" if held is _UNSET else json.dumps(held)
            differing.append(f"{key}={raw}, it has {has}")
    return differing


def training_facts(ckpt: Path) -> dict:
    """Parameter count of a checkpoint and, when ``train_policy`` made it, its training time."""
    from safetensors import safe_open

    with safe_open(ckpt / "model.safetensors", "pt") as weights:
        params = sum(math.prod(weights.get_slice(k).get_shape()) for k in weights.keys())  # noqa: SIM118 (not iterable)
    facts = {"params": params}
    timing = ckpt.parents[2] / TRAIN_TIME  # run_dir/checkpoints/last/pretrained_model
    if timing.is_file():
        t = json.loads(timing.read_text())
        facts.update(train_s=t["seconds"], train_s_per_step=t["seconds"] / t["steps"])
    return facts
