"""The drifting objective as pure tensor functions (no LeRobot, no robots).

Notation, per group b (one observation): query samples x_i (i < G, the generator's
outputs), positive targets y⁺_j (the expert chunk) and negative targets y⁻_k (by default
the group's own samples, with each sample masked against itself).

Scale normalization (one scalar for the whole batch)::

    s = mean_{b,i,j} ‖x_i − y_j‖            (over every target, positive or negative)
    ŝ = max(s / √S, 1e-3)                    x̃ = x / ŝ,  ỹ = y / ŝ
    d̃_ij = ‖x_i − y_j‖ / max(s, 1e-3)       (+100 on i = j when negatives are the queries)

For each temperature τ::

    ℓ_ij = −d̃_ij / τ
    A_ij = √max(softmax_j(ℓ)_ij · softmax_i(ℓ)_ij, 1e-6)     (row over targets, column over queries)
    W⁺_ij = A_ij · Σ_{k∈neg} A_ik  (j ∈ pos),    W⁻_ij = A_ij · Σ_{k∈pos} A_ik  (j ∈ neg)
    f_τ(x_i) = Σ_j W⁺_ij (ỹ⁺_j − x̃_i) − Σ_k W⁻_ik (ỹ⁻_k − x̃_i)
    λ_τ = √mean(f_τ²)                        (one scalar for the whole batch)

and the field is F = Σ_τ f_τ / λ_τ. The loss regresses x̃ onto the stop-gradient target
x̃ + F, so ∂L/∂x ∝ −F/ŝ: samples move along the field, which vanishes when the generated
set matches the positives (swapping the two flips its sign).

With G = 1 the only negative is the sample itself (masked), so F ∝ (ỹ⁺ − x̃): drifting
degenerates exactly into (batch-normalized) regression toward the expert, which collapses
multimodal data to its conditional mean. Use G ≥ 2; G = 1 is kept as a negative control.

The optional expert-proximal term (``neighbour_metric``, ``proximal_loss``; off by default, see
DriftConfig.expert_proximal_weight) lives here too: it is pure tensor math of the same batch.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

DEFAULT_TEMPERATURES = (0.02, 0.05, 0.2)
SELF_MASK_DISTANCE = 100.0
AFFINITY_FLOOR = 1e-6
MIN_SCALE = 1e-3


@dataclass
class DriftField:
    """The normalized field at each query sample plus the statistics that explain it."""

    force: Tensor  # [B, G, S] in normalized coordinates (x̃ units)
    scale: Tensor  # ŝ, scalar: coordinates were divided by it
    mean_distance: Tensor  # s, scalar
    force_rms: dict[float, Tensor]  # λ_τ per temperature, before normalization


def _pairwise_distance(x: Tensor, y: Tensor) -> Tensor:
    """‖x_i − y_j‖ via the dot-product formula, floored so its gradient never divides by zero."""
    sq = (x * x).sum(-1, keepdim=True) + (y * y).sum(-1).unsqueeze(-2) - 2 * x @ y.transpose(-1, -2)
    return sq.clamp_min(1e-8).sqrt()


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return values.mean()
    mask = mask.expand_as(values)
    return (values * mask).sum() / mask.sum().clamp_min(1)


def drift_field(
    x: Tensor,
    positives: Tensor,
    negatives: Tensor | None = None,
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES,
    mask: Tensor | None = None,
) -> DriftField:
    """Compute the multi-temperature drift field at the query samples ``x``.

    Args:
        x: [B, G, S] query samples (generated chunks, flattened).
        positives: [B, P, S] samples of the target distribution (the expert chunk, P = 1).
        negatives: [B, N, S] explicit negatives. ``None`` means the queries themselves, each
            masked against its own copy (the policy's case).
        temperatures: kernel bandwidths τ relative to the mean distance.
        mask: optional [B, S] of {0, 1}: coordinates outside it (padded actions) add no
            distance and receive no force.
    Returns:
        A :class:`DriftField`; every tensor in it is detached (the field is a target).
    """
    x = x.detach()
    positives = positives.detach()
    self_negatives = negatives is None
    negatives = x if self_negatives else negatives.detach()
    if mask is not None:
        coord_mask = mask[:, None, :].to(x.dtype)
        x, positives, negatives = x * coord_mask, positives * coord_mask, negatives * coord_mask
        n_coords = mask.to(x.dtype).sum(-1).mean()
    else:
        coord_mask = None
        n_coords = torch.tensor(float(x.shape[-1]), dtype=x.dtype, device=x.device)

    n_neg = negatives.shape[1]
    targets = torch.cat([negatives, positives], dim=1)  # [B, N + P, S]
    dist = _pairwise_distance(x, targets)  # [B, G, N + P]
    mean_distance = dist.mean()
    scale = (mean_distance / n_coords.sqrt()).clamp_min(MIN_SCALE)
    norm_dist = dist / mean_distance.clamp_min(MIN_SCALE)
    if self_negatives:
        eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        norm_dist = norm_dist + SELF_MASK_DISTANCE * torch.nn.functional.pad(eye, (0, positives.shape[1]))

    x_n, neg_n, pos_n = x / scale, negatives / scale, positives / scale
    total = torch.zeros_like(x)
    force_rms: dict[float, Tensor] = {}
    for tau in temperatures:
        logits = -norm_dist / tau
        affinity = (logits.softmax(dim=-1) * logits.softmax(dim=-2)).clamp_min(AFFINITY_FLOOR).sqrt()
        a_neg, a_pos = affinity[..., :n_neg], affinity[..., n_neg:]
        w_pos = a_pos * a_neg.sum(-1, keepdim=True)
        w_neg = a_neg * a_pos.sum(-1, keepdim=True)
        attraction = w_pos @ pos_n - w_pos.sum(-1, keepdim=True) * x_n
        repulsion = w_neg @ neg_n - w_neg.sum(-1, keepdim=True) * x_n
        force = attraction - repulsion
        if coord_mask is not None:
            force = force * coord_mask
        rms = _masked_mean(force.square(), coord_mask).sqrt()
        force_rms[tau] = rms
        total = total + force / rms.clamp_min(1e-12)
    return DriftField(force=total, scale=scale, mean_distance=mean_distance, force_rms=force_rms)


def drift_loss(
    x: Tensor,
    positives: Tensor,
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES,
    mask: Tensor | None = None,
) -> tuple[Tensor, DriftField]:
    """Per-group drifting loss: mean over (G, S) of (x/ŝ − stopgrad(x̃ + F))².

    Args:
        x: [B, G, S] the generator's G samples per observation (chunks flattened to S values).
        positives: [B, P, S] the expert chunk(s) for each observation (P = 1 in training).
        temperatures: kernel bandwidths τ relative to the mean distance.
        mask: optional [B, S] of {0, 1}: padded action coordinates, excluded from the loss.
    Returns:
        (loss [B], the ``DriftField`` it was computed from, for logging).

    Only ``x`` carries gradient. The value sits near ‖F‖² (≈ number of temperatures) by
    construction, so it is not a progress signal: watch the field statistics instead.
    """
    field = drift_field(x, positives, temperatures=temperatures, mask=mask)
    target = x.detach() / field.scale + field.force
    err = (x / field.scale - target).square()
    if mask is None:
        per_group = err.mean(dim=(1, 2))
    else:
        m = mask[:, None, :].to(err.dtype).expand_as(err)
        per_group = (err * m).sum(dim=(1, 2)) / m.sum(dim=(1, 2)).clamp_min(1)
    return per_group, field


def _row_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """[B] mean of [B, S] ``values`` over the coordinates a {0, 1} ``mask`` keeps (all without one)."""
    if mask is None:
        return values.mean(-1)
    mask = mask.to(values.dtype)
    return (values * mask).sum(-1) / mask.sum(-1).clamp_min(1)


METRIC_FLOOR = 0.1  # caps a coordinate's weight at ~10× the average's before normalizing


def neighbour_metric(features: Tensor, actions: Tensor, mask: Tensor | None = None) -> Tensor:
    """Per-coordinate weights [B, S] from the expert actions of each observation's batch neighbours.

    Our reading of the conditional expert geometry of Implicit Drifting Policy (arXiv
    2606.01098, Alg. 1; no public code): where observations like this one agree on a
    coordinate of the expert action, that coordinate is a constraint of this condition and
    weighs more; where they disagree (another mode, a free axis) it weighs less.

    - Neighbours: the features are standardized per dimension over the batch; the
      similarity of observation b to j ≠ b is −‖z_b − z_j‖² / F, standardized over j, and a
      softmax over j turns it into weights w_bj.
    - Local geometry: v_bs = Σ_j w_bj (a_js − a_bs)²; the global reference: the same with
      uniform weights over j ≠ b.
    - Weight: 1 / (v_local / v_global + METRIC_FLOOR), then divided by its mean over the
      (unmasked) coordinates, so the average coordinate weighs 1.

    Args:
        features: [B, F] observation features (detached here: the metric is a target).
        actions: [B, S] the expert chunks, flattened.
        mask: optional [B, S] of {0, 1}: coordinates left out of the normalizing mean.
    Returns:
        [B, S], detached. A batch of one observation has no neighbours: every weight is 1.
    """
    features, actions = features.detach(), actions.detach()
    b = features.shape[0]
    if b < 2:
        return torch.ones_like(actions)
    z = (features - features.mean(0)) / features.std(0, unbiased=False).clamp_min(1e-6)
    similarity = -torch.cdist(z, z).square() / z.shape[1]
    others = ~torch.eye(b, dtype=torch.bool, device=features.device)
    sim = similarity.masked_select(others).reshape(b, b - 1)
    sim = (sim - sim.mean(-1, keepdim=True)) / sim.std(-1, unbiased=False, keepdim=True).clamp_min(1e-6)
    weights = sim.softmax(-1)  # [B, B - 1]
    spread = (actions[None, :, :] - actions[:, None, :]).square()  # [B, B, S]: (a_j − a_b)²
    spread = spread[others].reshape(b, b - 1, -1)
    local = (weights[..., None] * spread).sum(1)
    reference = spread.mean(1).clamp_min(1e-12)
    raw = 1.0 / (local / reference + METRIC_FLOOR)
    return raw / _row_mean(raw, mask)[:, None]


def proximal_loss(probe: Tensor, expert: Tensor, metric: Tensor, mask: Tensor | None = None) -> Tensor:
    """Expert-proximal terminal loss [B]: the metric-weighted squared error of the generator's
    output from a near-expert input against the expert, mean over the (unmasked) coordinates.

    Args:
        probe: [B, S] the generator's output for the input expert + σ·ε.
        expert: [B, S] the expert chunks.
        metric: [B, S] coordinate weights (``neighbour_metric``).
        mask: optional [B, S] of {0, 1}: padded coordinates, excluded.
    """
    return _row_mean(metric * (probe - expert.detach()).square(), mask)
