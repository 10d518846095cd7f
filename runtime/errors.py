"""What can end a session, and how: the exception types the runner and its parts raise.

``ConfigError`` (runtime/config.py) and its subclasses are refusals before the loop starts;
``StartupCancelled`` is a Ctrl-C / SIGTERM during start-up; ``SessionFault`` ends a running loop in
its safe state. Each carries the one line a user reads.
"""

import signal
import termios

from lerobot_policy_drift.runtime.config import ConfigError

# What a failing serial link raises through LeRobot (ConnectionError, SerialException ⊂ OSError).
BUS_ERRORS = (ConnectionError, OSError, termios.error)


class ConnectError(ConfigError):
    """The arm could not be connected or does not match its calibration: nothing moved."""


class StartupCancelled(Exception):
    """Ctrl-C / SIGTERM arrived during start-up: nothing more is started, the rest is undone."""

    def __init__(self, signal_name: str):
        super().__init__(f"start-up cancelled by {signal_name}")
        self.signal_name = signal_name
        self.exit_code = 128 + signal.Signals[signal_name].value


class SessionFault(Exception):
    """Ends the session in its safe state; ``kind`` names what broke."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind, self.message = kind, message
