"""Entry module LeRobot imports by distribution name; importing it registers the "drift" policy."""

from lerobot_policy_drift.drift import DriftConfig, DriftPolicy, make_drift_pre_post_processors
from lerobot_policy_drift.drift.video_backend import shorten_lerobot_decoder_warning

shorten_lerobot_decoder_warning()

__all__ = ["DriftConfig", "DriftPolicy", "make_drift_pre_post_processors"]
