"""Chunk scheduling on the tick grid: stale actions dropped by ticks consumed, cross-faded joins."""

import numpy as np
import pytest

from lerobot_policy_drift.runtime.chunks import ChunkSchedule, LatencyWindow, should_request, upsample


def ramp(start, n, step=1.0):
    return np.array([[start + i * step] for i in range(n)])


def test_actions_play_on_their_ticks_and_underrun_is_none():
    plan = ChunkSchedule(blend_steps=0)
    plan.insert(ramp(0, 4), first_tick=10, now_tick=10, last_command=None)
    assert [plan.pop(t)[0] for t in range(10, 14)] == [0, 1, 2, 3]
    assert plan.pop(14) is None  # underrun: the runner holds


def test_stale_actions_are_dropped_by_ticks_actually_consumed():
    plan = ChunkSchedule(blend_steps=0)
    report = plan.insert(ramp(0, 8), first_tick=20, now_tick=23, last_command=None)
    assert report.stale_dropped == 3 and report.queued == 5
    assert plan.pop(23)[0] == 3  # the action meant for tick 23, not the chunk's first


def test_join_is_a_linear_cross_fade_over_blend_steps():
    plan = ChunkSchedule(blend_steps=3)
    plan.insert(np.zeros((8, 1)), first_tick=0, now_tick=0, last_command=None)
    plan.pop(0), plan.pop(1)
    report = plan.insert(np.full((8, 1), 8.0), first_tick=1, now_tick=2, last_command=np.zeros(1))
    assert report.blended == 3 and report.stale_dropped == 1
    played = [plan.pop(t)[0] for t in range(2, 7)]
    assert played == pytest.approx([2.0, 4.0, 6.0, 8.0, 8.0])  # w = 1/4, 2/4, 3/4, then the new chunk
    steps = np.diff([0.0, *played])
    assert np.abs(steps).max() <= 8.0 / 4 + 1e-9  # no step bigger than a quarter of the gap


def test_after_an_underrun_the_fade_starts_from_the_last_command():
    plan = ChunkSchedule(blend_steps=1)
    report = plan.insert(np.full((4, 1), 10.0), first_tick=5, now_tick=5, last_command=np.array([4.0]))
    assert report.blended == 1 and plan.pop(5)[0] == pytest.approx(7.0)


def test_fade_holds_the_old_plans_last_value_where_it_ran_out():
    plan = ChunkSchedule(blend_steps=3)
    plan.insert(np.array([[1.0]]), first_tick=0, now_tick=0, last_command=None)  # one action, tick 0
    plan.insert(np.full((4, 1), 5.0), first_tick=0, now_tick=0, last_command=None)
    assert [plan.pop(t)[0] for t in range(4)] == pytest.approx([2.0, 3.0, 4.0, 5.0])


def test_latency_window_forgets_a_spike():
    window = LatencyWindow(window=5)
    window.add(1.0)  # warm-up spike
    for _ in range(5):
        window.add(0.05)
    assert window.ticks(fps=30) == 2  # 50 ms at 30 Hz, the spike has left the window
    assert should_request(queued=4, latency_ticks=2, margin=2) and not should_request(5, 2, 2)


def test_negative_blend_is_refused():
    with pytest.raises(ValueError):
        ChunkSchedule(blend_steps=-1)


def test_upsample_interpolates_between_policy_steps():
    chunk = np.array([[0.0, 10.0], [3.0, 10.0], [6.0, 4.0]])
    fine = upsample(chunk, 3)
    assert fine[:, 0].tolist() == pytest.approx([0, 1, 2, 3, 4, 5, 6])
    assert fine[::3].tolist() == chunk.tolist() and upsample(chunk, 1) is chunk


def test_committed_gives_the_plan_for_the_ticks_a_new_chunk_will_find_executed():
    plan = ChunkSchedule(blend_steps=3)
    plan.insert(ramp(0, 8), first_tick=0, now_tick=0, last_command=None)
    plan.pop(0), plan.pop(1), plan.pop(2)  # write-first: tick 2's goal has gone out when tick 2 asks
    np.testing.assert_array_equal(plan.committed(2, 3)[:, 0], [2, 3, 4])
    np.testing.assert_array_equal(plan.committed(2, 3, stride=2)[:, 0], [2, 4, 6])
    np.testing.assert_array_equal(plan.committed(6, 4)[:, 0], [6, 7])  # the plan ends at tick 7
    assert plan.committed(9, 2) is None
    plan.clear()
    assert plan.committed(2, 3) is None


def test_a_chunk_computed_with_its_prefix_joins_without_a_blend():
    plan = ChunkSchedule(blend_steps=3)
    plan.insert(ramp(0, 8), first_tick=0, now_tick=0, last_command=None)
    plan.pop(0)
    report = plan.insert(ramp(1, 8), first_tick=1, now_tick=2, last_command=np.zeros(1), blend=False)
    assert report.blended == 0 and report.join_step == 0.0  # it continues the plan exactly
    assert plan.pop(2)[0] == 2


def test_join_step_is_what_the_first_new_command_changes():
    plan = ChunkSchedule(blend_steps=0)
    plan.insert(np.zeros((8, 2)), first_tick=0, now_tick=0, last_command=None)
    report = plan.insert(np.array([[0.5, -2.0]] * 8), first_tick=3, now_tick=4, last_command=None)
    assert report.join_step == 2.0
    blended = ChunkSchedule(blend_steps=3)
    blended.insert(np.zeros((8, 1)), first_tick=0, now_tick=0, last_command=None)
    report = blended.insert(np.full((8, 1), 8.0), first_tick=0, now_tick=1, last_command=None)
    assert report.join_step == 2.0  # a quarter of the gap: the cross-fade's first step
    assert ChunkSchedule().insert(ramp(0, 4), 0, 0, None).join_step is None  # no old plan


def test_best_of_k_keeps_the_candidate_that_continues_the_plan():
    from lerobot_policy_drift.runtime.chunks import closest_candidate

    candidates = np.stack([np.full((8, 2), v) for v in (-1.0, 0.2, 1.0)])
    plan = np.array([[0.3, 0.1], [0.25, 0.2]])
    np.testing.assert_array_equal(closest_candidate(candidates, plan), candidates[1])
    np.testing.assert_array_equal(closest_candidate(candidates, np.full((20, 2), 0.9)), candidates[2])
    np.testing.assert_array_equal(closest_candidate(candidates, None), candidates[0])  # no plan: a fair draw


def test_temporal_ensembling_matches_lerobots_act_ensembler():
    """A chunk every tick, each arriving at once: what the schedule plays is what LeRobot's
    ``ACTTemporalEnsembler`` returns from the same chunks (oldest prediction weighted most for
    a positive coefficient)."""
    import torch
    from lerobot.policies.act.modeling_act import ACTTemporalEnsembler

    rng = np.random.default_rng(0)
    chunks = rng.normal(size=(12, 5, 2))
    for coeff in (0.01, 0.5, -0.3):
        reference = ACTTemporalEnsembler(coeff, chunk_size=5)
        plan = ChunkSchedule(blend_steps=3, ensemble_coeff=coeff)
        for k, chunk in enumerate(chunks):
            plan.insert(chunk, first_tick=k, now_tick=k, last_command=None)
            expected = reference.update(torch.from_numpy(chunk[None]).float())[0].numpy()
            np.testing.assert_allclose(plan.pop(k), expected, atol=1e-5)


def test_ensembling_drops_late_ticks_and_starts_a_handover_from_the_last_command():
    plan = ChunkSchedule(blend_steps=1, ensemble_coeff=0.0)
    first = plan.insert(np.full((4, 1), 10.0), first_tick=0, now_tick=0, last_command=np.array([4.0]))
    assert first.blended == 1 and plan.pop(0)[0] == pytest.approx(7.0)  # no plan yet: the usual fade
    late = plan.insert(np.full((5, 1), 20.0), first_tick=0, now_tick=1, last_command=None)
    assert late.stale_dropped == 1 and late.blended == 0
    assert late.join_step == pytest.approx(5.0)  # tick 1: (10 + 20) / 2, against the plan's 10
    # ticks 1-3 averaged with the first chunk; tick 4, which only the new chunk covers, is its own
    assert [plan.pop(t)[0] for t in range(1, 5)] == pytest.approx([15.0, 15.0, 15.0, 20.0])
