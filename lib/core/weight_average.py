"""An exponential moving average of a network's weights (TRAIN.EMA_DECAY).

The average follows the trained weights after every optimiser step,

    average <- d_n * average + (1 - d_n) * weights,   d_n = min(decay, (1 + n) / (10 + n)),

where n counts the updates so far: early on, when the weights move fast, the average follows
them closely; from n = (10 decay - 1) / (1 - decay) on it keeps ``decay`` (an average over about
1 / (1 - decay) steps; 80 updates for 0.9, 890 for 0.99, so a short run at 0.99 or above
averages over roughly its last tenth). Buffers are not averaged: they follow the trained
model's. Where it is on, validation, ``best.pth`` and ``last.pth`` carry the average as their
``model`` (what ``eval.py`` and inference load) and ``last.pth`` keeps the trained weights
beside it for a resume.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """A copy of ``model`` whose floating-point parameters average the trained ones.

    Args:
        model: the trained network (unwrapped: no DDP, no torch.compile wrapper).
        decay: the long-run decay in (0, 1).

    Buffers (fixed tensors such as DFT matrices, or running statistics) are copied from the
    trained model at every update, not averaged; the copy stays in eval mode and needs no
    gradients.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weight-average decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        """The decay of the next update (the warm-up keeps it low for the first steps)."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s parameters and take its buffers (call after
        each optimiser step)."""
        weight = 1.0 - self.current_decay()
        for average, trained in zip(self.model.parameters(), model.parameters(), strict=True):
            average.lerp_(trained.detach(), weight)
        for average, trained in zip(self.model.buffers(), model.buffers(), strict=True):
            average.copy_(trained)
        self.updates += 1

    def state_dict(self) -> dict:
        """The averaged weights and the update count, for a checkpoint."""
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s averaged weights and update count."""
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
