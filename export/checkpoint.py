"""Load a DriftPolicy checkpoint (a ``lerobot-train`` ``pretrained_model`` folder) for export.

The runtime's torch backend also loads other LeRobot chunking policies (e.g. Diffusion Policy
baselines) through the same function, with ``policy_types`` widened.

Everything goes through LeRobot's own loaders (config, safetensors weights, processor
pipelines); every way a checkpoint can be unusable ends in an :class:`ExportError` that says
what is wrong and what to do.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from draccus.utils import ParsingError
from lerobot.processor import PolicyProcessorPipeline
from lerobot.processor.normalize_processor import NormalizerProcessorStep, UnnormalizerProcessorStep
from safetensors import SafetensorError

from lerobot_policy_drift.drift import DriftConfig, DriftPolicy


class ExportError(Exception):
    """An export that cannot go ahead; the message is meant for the user."""


@dataclass
class LoadedCheckpoint:
    path: Path
    policy: DriftPolicy  # or another LeRobot PreTrainedPolicy when policy_types allows it
    preprocessor: PolicyProcessorPipeline
    postprocessor: PolicyProcessorPipeline
    normalizer: NormalizerProcessorStep
    unnormalizer: UnnormalizerProcessorStep
    fps: int
    state_names: list[str]
    action_names: list[str]
    dataset_root: Path | None
    dataset_repo_id: str | None


def _step(pipeline, cls, what: str, path: Path):
    for step in pipeline.steps:
        if isinstance(step, cls):
            return step
    raise ExportError(f"{path}: the saved {what} has no {cls.__name__}; was it trained with lerobot-train?")


def load_checkpoint(
    path: Path,
    dataset_root: Path | None = None,
    policy_types: tuple[str, ...] = ("drift",),
    device: str = "cpu",
) -> LoadedCheckpoint:
    """Load policy, processors and the dataset facts the bundle needs (fps, motor names). The
    policy and the preprocessor's device step go to ``device``; the postprocessor returns to the CPU."""
    from lerobot.configs import PreTrainedConfig
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors

    path = Path(path)
    config_file = path / "config.json"
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise ExportError(
            f"checkpoint folder {path} {what} (expected a lerobot-train pretrained_model/ folder)."
        )
    if not config_file.is_file():
        raise ExportError(f"{path} has no config.json; point --ckpt at a pretrained_model/ folder.")
    try:
        policy_type = json.loads(config_file.read_text()).get("type")
    except json.JSONDecodeError as err:
        raise ExportError(f"{config_file} is not valid JSON ({err}); the checkpoint is corrupt.") from err
    if policy_type not in policy_types:
        raise ExportError(
            f"{path} holds a '{policy_type}' policy; only {' / '.join(policy_types)} checkpoints are accepted here."
        )
    if not (path / "model.safetensors").is_file():
        raise ExportError(f"{path} has no model.safetensors; the checkpoint is incomplete.")
    try:
        config = (DriftConfig if policy_type == "drift" else PreTrainedConfig).from_pretrained(path)
        config.device = device  # the device the checkpoint was trained on may not exist here
        cls = DriftPolicy if policy_type == "drift" else get_policy_class(policy_type)
        policy = cls.from_pretrained(path, config=config).eval()
        pre, post = make_pre_post_processors(
            config,
            pretrained_path=str(path),
            preprocessor_overrides={"device_processor": {"device": device}},
            postprocessor_overrides={"device_processor": {"device": "cpu"}},
        )
    except (ValueError, ParsingError) as err:
        cause = err.__cause__ or err  # draccus wraps DriftConfig's own ValueError
        raise ExportError(f"{path}: the checkpoint's config is invalid: {cause}") from err
    except (OSError, RuntimeError, SafetensorError) as err:
        raise ExportError(f"{path}: could not load the checkpoint ({type(err).__name__}: {err}).") from err

    fps, state_names, action_names, root, repo_id = _dataset_facts(path, config, dataset_root)
    return LoadedCheckpoint(
        path=path,
        policy=policy,
        preprocessor=pre,
        postprocessor=post,
        normalizer=_step(pre, NormalizerProcessorStep, "preprocessor", path),
        unnormalizer=_step(post, UnnormalizerProcessorStep, "postprocessor", path),
        fps=fps,
        state_names=state_names,
        action_names=action_names,
        dataset_root=root,
        dataset_repo_id=repo_id,
    )


def _dataset_facts(path: Path, config: DriftConfig, dataset_root: Path | None):
    """fps and motor names from the training dataset's meta/info.json (named in train_config.json)."""
    repo_id = None
    train_cfg = path / "train_config.json"
    if dataset_root is None and train_cfg.is_file():
        dataset = json.loads(train_cfg.read_text()).get("dataset", {})
        repo_id = dataset.get("repo_id")
        dataset_root = Path(dataset["root"]) if dataset.get("root") else _default_root(repo_id)
    info_file = Path(dataset_root) / "meta" / "info.json" if dataset_root else None
    if info_file is None or not info_file.is_file():
        raise ExportError(
            f"cannot find the training dataset's meta/info.json (looked in {dataset_root}); the bundle needs its "
            "fps and motor names. Pass --dataset-root pointing at the local dataset."
        )
    info = json.loads(info_file.read_text())
    feats = info["features"]
    state_names = list(feats["observation.state"].get("names") or [])
    action_names = list(feats["action"].get("names") or [])
    if len(action_names) != config.action_feature.shape[0]:
        raise ExportError(f"{info_file}: action names {action_names} do not match the policy's action size.")
    return int(info["fps"]), state_names, action_names, Path(dataset_root), repo_id


def _default_root(repo_id: str | None) -> Path | None:
    if not repo_id:
        return None
    from lerobot.utils.constants import HF_LEROBOT_HOME

    return Path(HF_LEROBOT_HOME) / repo_id
