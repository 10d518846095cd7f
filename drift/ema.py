"""An exponential moving average of a network's weights, the weights a policy is evaluated with.

The decay follows a warm-up, ``decay(t) = min(max_decay, 1 - (1 + t) ** -power)`` after t
updates, the schedule Diffusion Policy evaluates with (power 0.75, max 0.9999): early weights
are forgotten quickly, and the average lengthens as training goes on (0.969 after 100 updates,
0.9967 after 2,000, 0.9999 from about 200,000). Floating-point parameters are averaged; buffers
(e.g. normalization statistics) are copied as they are.
"""

from contextlib import contextmanager

import torch
from torch import nn


def ema_decay(updates: int, power: float, max_decay: float) -> float:
    """The decay applied at update number ``updates`` (0 for the first)."""
    return min(max_decay, 1.0 - (1.0 + updates) ** -power)


class WeightAverage:
    def __init__(self, module: nn.Module, power: float = 0.75, max_decay: float = 0.9999):
        self.power, self.max_decay = power, max_decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Fold the module's current weights into the average (after an optimizer step)."""
        decay = ema_decay(self.updates, self.power, self.max_decay)
        for key, value in module.state_dict().items():
            if value.is_floating_point():
                self.shadow[key].lerp_(value.detach(), 1.0 - decay)
            else:
                self.shadow[key].copy_(value)
        self.updates += 1

    @contextmanager
    def swapped_in(self, module: nn.Module):
        """The module holds the averaged weights inside the block, its own again after it."""
        live = {k: v.detach().clone() for k, v in module.state_dict().items()}
        module.load_state_dict(self.shadow)
        try:
            yield module
        finally:
            module.load_state_dict(live)
