"""The drift field's defining properties, checked on the pure tensor functions."""

import numpy as np
import pytest
import torch

from lerobot_policy_drift.drift.objective import (
    drift_field,
    drift_loss,
    neighbour_metric,
    proximal_loss,
)


def _reference_field(x, pos, neg, temperatures, self_neg):
    """Entry-by-entry numpy evaluation of the equations in drift/objective.py's docstring."""
    x, pos, neg = (np.asarray(a, dtype=np.float64) for a in (x, pos, neg))
    b, g, s = x.shape
    targets = np.concatenate([neg, pos], axis=1)
    n_neg = neg.shape[1]
    dist = np.sqrt(np.maximum(((x[:, :, None, :] - targets[:, None, :, :]) ** 2).sum(-1), 1e-8))
    mean_d = dist.mean()
    scale = max(mean_d / np.sqrt(s), 1e-3)
    nd = dist / max(mean_d, 1e-3)
    if self_neg:
        for i in range(g):
            nd[:, i, i] += 100.0
    total = np.zeros_like(x)
    for tau in temperatures:
        f = np.zeros_like(x)
        for bb in range(b):
            logit = -nd[bb] / tau
            row = np.exp(logit - logit.max(1, keepdims=True))
            row /= row.sum(1, keepdims=True)
            col = np.exp(logit - logit.max(0, keepdims=True))
            col /= col.sum(0, keepdims=True)
            a = np.sqrt(np.maximum(row * col, 1e-6))
            for i in range(g):
                sum_neg, sum_pos = a[i, :n_neg].sum(), a[i, n_neg:].sum()
                for j in range(targets.shape[1]):
                    diff = (targets[bb, j] - x[bb, i]) / scale
                    f[bb, i] += a[i, j] * sum_neg * diff if j >= n_neg else -a[i, j] * sum_pos * diff
        total += f / np.sqrt((f**2).mean())
    return total, scale


def test_matches_entrywise_reference_with_self_masked_or_explicit_negatives():
    x, pos, neg = torch.randn(3, 4, 5), torch.randn(3, 2, 5), torch.randn(3, 3, 5)
    for negatives, self_neg in ((None, True), (neg, False)):
        field = drift_field(x, pos, negatives)
        ref, scale = _reference_field(x, pos, x if self_neg else neg, (0.02, 0.05, 0.2), self_neg)
        np.testing.assert_allclose(field.force.numpy(), ref, rtol=1e-4, atol=1e-5)
        assert field.scale.item() == pytest.approx(scale, rel=1e-5)


def test_antisymmetric_in_positives_and_negatives_and_zero_when_they_coincide():
    x, p, q = torch.randn(2, 5, 6), torch.randn(2, 3, 6), torch.randn(2, 3, 6)
    forward = drift_field(x, p, q).force
    swapped = drift_field(x, q, p).force
    torch.testing.assert_close(forward, -swapped, rtol=1e-5, atol=1e-6)
    same = drift_field(x, p, p.clone()).force
    assert same.abs().max() < 1e-6


def test_lone_sample_is_attracted_toward_the_positive():
    x, pos = torch.zeros(1, 1, 3), torch.tensor([[[1.0, 2.0, -1.0]]])
    force = drift_field(x, pos).force[0, 0]
    cos = torch.nn.functional.cosine_similarity(force, pos[0, 0], dim=0)
    assert cos > 0.999


def test_nearby_generated_samples_repel_each_other():
    # Two samples close together, the positive far away on their bisector.
    x = torch.tensor([[[-0.05, 0.0], [0.05, 0.0]]])
    pos = torch.tensor([[[0.0, 5.0]]])
    force = drift_field(x, pos).force[0]
    assert force[0, 0] < 0 < force[1, 0]  # pushed apart along the axis joining them
    assert force[0, 1] > 0 and force[1, 1] > 0  # and still pulled toward the positive


def test_invariant_to_a_common_translation():
    x, pos = torch.randn(3, 4, 6), torch.randn(3, 1, 6)
    shift = torch.randn(1, 1, 6) * 3
    torch.testing.assert_close(
        drift_field(x, pos).force, drift_field(x + shift, pos + shift).force, rtol=1e-4, atol=1e-4
    )


def test_single_sample_degenerates_to_regression_toward_the_expert():
    """G = 1: the step is parallel to (expert − sample) for every observation (MSE/BC in disguise)."""
    x = torch.randn(16, 1, 10, requires_grad=True)
    expert = torch.randn(16, 1, 10)
    loss, _ = drift_loss(x, expert)
    loss.sum().backward()
    step = -x.grad[:, 0]
    cos = torch.nn.functional.cosine_similarity(step, (expert - x.detach())[:, 0], dim=-1)
    assert torch.all(cos > 0.999)


def test_gradient_flows_only_through_the_generated_samples():
    x = torch.randn(2, 4, 5, requires_grad=True)
    pos = torch.randn(2, 1, 5, requires_grad=True)
    loss, field = drift_loss(x, pos)
    loss.mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert pos.grad is None
    assert not field.force.requires_grad


def test_loss_value_is_the_squared_normalized_field():
    x, pos = torch.randn(4, 4, 12), torch.randn(4, 1, 12)
    loss, field = drift_loss(x, pos)
    torch.testing.assert_close(loss, field.force.square().mean(dim=(1, 2)))


def test_padding_mask_removes_padded_coordinates_from_distance_and_force():
    x, pos = torch.randn(2, 4, 6), torch.randn(2, 1, 6)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0]], dtype=torch.float32)
    masked = drift_field(x, pos, mask=mask)
    assert masked.force[..., 4:].abs().max() == 0
    # Whatever sits in the padded coordinates does not change the field elsewhere.
    x2, pos2 = x.clone(), pos.clone()
    x2[..., 4:], pos2[..., 4:] = 50.0, -50.0
    torch.testing.assert_close(drift_field(x2, pos2, mask=mask).force, masked.force)
    # And it equals the field of the truncated problem.
    torch.testing.assert_close(
        masked.force[..., :4], drift_field(x[..., :4], pos[..., :4]).force, rtol=1e-4, atol=1e-5
    )
    loss, _ = drift_loss(x, pos, mask=mask)
    assert torch.isfinite(loss).all()


def _two_conditions(n_per: int = 6, seed: int = 0):
    """Two clusters of observations; within each, the expert agrees on coordinate 0 (a
    constraint of that condition) and scatters on coordinate 1 (free)."""
    gen = torch.Generator().manual_seed(seed)
    features = torch.cat([torch.zeros(n_per, 3), torch.full((n_per, 3), 5.0)])
    features = features + 0.05 * torch.randn(2 * n_per, 3, generator=gen)
    constrained = torch.cat([torch.full((n_per,), -0.8), torch.full((n_per,), 0.8)])
    free = torch.rand(2 * n_per, generator=gen) * 2 - 1
    return features, torch.stack([constrained, free], dim=1)


def test_neighbour_metric_weighs_the_coordinates_similar_observations_agree_on():
    features, actions = _two_conditions()
    metric = neighbour_metric(features, actions)
    assert metric.shape == actions.shape and not metric.requires_grad
    assert (metric[:, 0] > 3 * metric[:, 1]).all()
    torch.testing.assert_close(metric.mean(-1), torch.ones(len(actions)))


def test_neighbour_metric_needs_neighbours_and_respects_the_mask():
    assert torch.equal(neighbour_metric(torch.randn(1, 3), torch.randn(1, 4)), torch.ones(1, 4))
    features, actions = _two_conditions()
    actions = torch.cat([actions, torch.randn(len(actions), 1)], dim=1)
    mask = torch.tensor([1.0, 1.0, 0.0]).expand_as(actions)
    metric = neighbour_metric(features, actions, mask)
    torch.testing.assert_close(metric[:, :2].mean(-1), torch.ones(len(actions)))


def test_proximal_loss_is_the_metric_weighted_error_to_the_expert():
    expert = torch.zeros(2, 3)
    probe = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 2.0]], requires_grad=True)
    metric = torch.tensor([[2.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    loss = proximal_loss(probe, expert, metric)
    torch.testing.assert_close(loss, torch.tensor([1.0, 4.0 / 3]))
    assert torch.equal(proximal_loss(expert, expert, metric), torch.zeros(2))
    masked = proximal_loss(probe, expert, metric, torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]))
    torch.testing.assert_close(masked, torch.tensor([1.5, 0.0]))
    loss.sum().backward()
    assert probe.grad is not None
