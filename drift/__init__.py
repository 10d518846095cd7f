"""Drift: a LeRobot policy plugin whose generator acts in one network call per action chunk.

Importing this package registers ``DriftConfig`` under the policy type ``"drift"``.
"""

from .configuration_drift import DriftConfig
from .modeling_drift import DriftModel, DriftPolicy
from .processor_drift import make_drift_pre_post_processors

__all__ = ["DriftConfig", "DriftModel", "DriftPolicy", "make_drift_pre_post_processors"]
