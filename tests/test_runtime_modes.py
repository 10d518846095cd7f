"""The handover back to the operator, as pure arithmetic (runtime/modes.py)."""

import numpy as np

from lerobot_policy_drift.runtime.modes import Handover


def test_an_actuated_leader_comes_to_the_follower_while_the_follower_holds():
    hold, start = np.array([10.0, -5.0]), np.array([0.0, 0.0])
    handover = Handover(ticks=4, actuated=True, hold=hold, leader_start=start)
    steps = [handover.advance(lead=np.array([99.0, 99.0])) for _ in range(4)]
    assert all(np.array_equal(command, hold) for command, _, _ in steps)  # the follower never moves
    goals = np.array([goal for _, goal, _ in steps])
    np.testing.assert_allclose(goals[:, 0], [2.5, 5.0, 7.5, 10.0])  # linear, ends on the follower
    assert [done for _, _, done in steps] == [False, False, False, True]


def test_a_passive_leader_has_the_follower_slide_to_where_the_operator_holds_it():
    handover = Handover(ticks=2, actuated=False, hold=np.array([0.0]), leader_start=np.array([4.0]))
    command, goal, done = handover.advance(lead=np.array([8.0]))
    assert goal is None and not done and command[0] == 4.0  # halfway to the live leader
    command, _, done = handover.advance(lead=np.array([6.0]))
    assert done and command[0] == 6.0  # wherever the operator holds it now
