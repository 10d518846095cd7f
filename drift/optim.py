"""LeRobot's AdamW preset, built with torch's fused kernel where the parameters' device has one.

torch chooses AdamW's implementation per device: on CUDA its multi-tensor path, on CPU a Python
loop over every parameter tensor (about 120 in the demo's policy). The fused kernel computes the
same update in one call: on a 2-core CPU the demo's step 1.07× faster, the recipe's 1.05×
(BENCHMARKS §7.6, ``python -m benchmarks.train_step --demo``).
"""

from dataclasses import asdict, dataclass

import torch
from lerobot.optim import AdamWConfig
from lerobot.optim.optimizers import OptimizerConfig


@OptimizerConfig.register_subclass("drift_adamw")
@dataclass
class DriftAdamWConfig(AdamWConfig):
    """``AdamWConfig`` plus ``fused``: True uses the fused kernel when every parameter's device has
    one (CPU and CUDA do) and torch's own choice otherwise; False always leaves it to torch."""

    fused: bool = True

    def build(self, params) -> torch.optim.Optimizer:
        kwargs = asdict(self)
        kwargs.pop("grad_clip_norm")
        fused = kwargs.pop("fused")
        params = list(params)
        if fused and all(
            p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in _tensors(params)
        ):
            return torch.optim.AdamW(params, fused=True, **kwargs)
        return torch.optim.AdamW(params, **kwargs)


def _tensors(params: list):
    """The tensors of a parameter list or of a list of param-group dicts."""
    for item in params:
        if isinstance(item, dict):
            yield from item["params"]
        else:
            yield item
