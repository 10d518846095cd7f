"""Who drives the follower: the policy (``auto``), the operator's leader arm (``teleop``), or a
``handover`` from the policy back to the operator.

Handing over to the policy is immediate (its first chunk is blended in from the live pose by the
chunk schedule). Taking control back is a ``Handover`` over ``handover_s``: an actuated leader
(SO-100/101) is driven to the follower's pose while the follower holds; a passive one (Koch) has
the follower slide to wherever the operator holds it.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lerobot_policy_drift.runtime.errors import BUS_ERRORS, SessionFault
from lerobot_policy_drift.runtime.recording import as_action

MODES = ("auto", "teleop", "handover")


@dataclass
class Handover:
    """Control going back to the operator over ``ticks`` ticks (pure: the arithmetic only)."""

    ticks: int
    actuated: bool  # the leader can be driven (SO leaders), so it comes to the follower
    hold: np.ndarray  # the follower's last safe command when the handover began
    leader_start: np.ndarray  # where the leader was then
    step: int = 0

    def advance(self, lead: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, bool]:
        """One tick: (follower command, leader goal or None, finished)."""
        self.step += 1
        w = min(self.step / self.ticks, 1.0)
        if self.actuated:
            return self.hold, (1 - w) * self.leader_start + w * self.hold, w >= 1.0
        return (1 - w) * self.hold + w * lead, None, w >= 1.0


class Modes:
    """The mode state machine. ``changed(old, new, why, tick)`` is called on every transition."""

    def __init__(
        self,
        first: str,
        teleop,
        names: tuple[str, ...],
        handover_ticks: int,
        events: Counter,
        changed: Callable[[str, str, str, int], None],
    ):
        self.mode = first
        self.epoch = 0  # autonomy engagements so far: a chunk computed for an earlier one is dropped
        self.handover: Handover | None = None
        self._teleop, self._names, self._ticks = teleop, names, handover_ticks
        self._events, self._changed = events, changed

    def switch(self, command: str, source: str, k: int, hold: np.ndarray) -> None:
        """An operator command (``auto`` / ``teleop``) at tick ``k``; ``hold`` is the last safe command."""
        if command == "auto" and self.mode != "auto":
            if self.mode == "handover" and self.handover.actuated:
                self._teleop.bus.disable_torque()  # the leader was being driven: let it go limp again
            self.epoch += 1
            self._set("auto", f"operator ({source})", k)
        elif command == "teleop" and self.mode == "auto":
            if self._teleop is None:
                self._events["teleop_without_leader"] += 1
                return
            actuated = bool(self._teleop.feedback_features)
            self.handover = Handover(self._ticks, actuated, hold.copy(), self.leader_action())
            if actuated:
                self._teleop.bus.enable_torque()
            how = "leader to follower" if actuated else "follower to leader"
            self._set("handover", f"operator ({source}); {how}", k)

    def operator_command(self, k: int) -> np.ndarray:
        """This tick's follower command in ``teleop`` or ``handover`` mode."""
        lead = self.leader_action()
        if self.mode == "teleop":
            return lead
        command, leader_goal, finished = self.handover.advance(lead)
        if leader_goal is not None:
            self._teleop.send_feedback(as_action(self._names, leader_goal))
        if finished:
            if self.handover.actuated:
                self._teleop.bus.disable_torque()
            self._set("teleop", "handover complete", k)
        return command

    def leader_action(self) -> np.ndarray:
        try:
            action = self._teleop.get_action()
        except BUS_ERRORS as err:
            raise SessionFault("leader", f"the leader arm stopped answering: {err}") from err
        return np.array([action[n] for n in self._names])

    def _set(self, mode: str, why: str, k: int) -> None:
        old, self.mode = self.mode, mode
        self._changed(old, mode, why, k)
