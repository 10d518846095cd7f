"""Entry module LeRobot imports by distribution name; importing it registers the "drift" policy."""

from drift import DriftConfig, DriftPolicy, make_drift_pre_post_processors

__all__ = ["DriftConfig", "DriftPolicy", "make_drift_pre_post_processors"]
