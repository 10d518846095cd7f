"""Every private LeRobot API Drift relies on, in one file, so a LeRobot upgrade that renames or
reshapes one is a change here and nowhere else. Written against lerobot 0.6.1.

- ``MotorsBus._normalize`` (drift-run's joint limits in action units, exactly as LeRobot converts
  the calibration's raw range);
- ``NormalizerProcessorStep._tensor_stats`` and ``._apply_transform`` (the exported graph folds
  LeRobot's own normalization in, with the training statistics).

Public APIs that LeRobot has announced it will change, and what here would break:
- ``PreTrainedPolicy._save_pretrained``'s signature (changed on LeRobot main, PR #4010): Drift does
  not override it, so the plugin keeps saving through LeRobot's implementation;
- the 0.7 roadmap (#3832) splits the observation API: drift-run's calls to
  ``Robot.get_observation()`` / ``observation_features`` (runtime/runner.py, runtime/wiring.py)
  and the recorder's ``hw_to_dataset_features`` / ``build_dataset_frame`` (runtime/recording.py)
  would follow it.
"""


def normalize_positions(bus, motor_id: int, raw: tuple[int, ...]) -> list[float]:
    """Raw servo positions of one motor in LeRobot's action units (degrees, or % of range)."""
    return [bus._normalize({motor_id: value})[motor_id] for value in raw]


def normalizer_stats(normalizer) -> dict:
    """``{feature: {stat: tensor}}`` as a LeRobot normalizer step holds them."""
    return normalizer._tensor_stats


def apply_normalization(normalizer, tensor, key: str, feature_type, inverse: bool = False):
    """LeRobot's own (un)normalization of one feature, traceable into an ONNX graph."""
    return normalizer._apply_transform(tensor, key, feature_type, inverse=inverse)
