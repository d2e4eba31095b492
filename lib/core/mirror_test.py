"""Test-time mirroring (``EVAL.MIRROR_TEST``): average a model with its mirror image.

Refines each window twice, as it is and mirrored left/right (:mod:`lib.data.mirroring`), maps
the second result back and averages the two. The mirror plane is x = 0 of the model's input,
i.e. of the normalised window: the root's mean x under the default centring, the image centre
under the released 2D convention. The averaged model is then exactly mirror-equivariant: the
refinement of a mirrored motion is the mirrored refinement. Twice the model calls.
"""

from __future__ import annotations

import torch
from torch import nn

from lib.data.mirroring import mirror_about


class MirrorAveraged(nn.Module):
    """``(f(x) + M f(M x)) / 2`` with M the left/right mirror about x = 0.

    Args:
        model: a window model, (B, T, C) -> (B, T, C).
        permutation: joint order of the mirror image.
        coords: values per joint (2 or 3).

    Shape:
        x: (B, T, J * coords) -> (B, T, J * coords)
    """

    def __init__(self, model: nn.Module, permutation: torch.Tensor, coords: int) -> None:
        super().__init__()
        self.model = model
        self.coords = coords
        self.register_buffer("permutation", permutation.clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = x.new_zeros(len(x))
        order = self.permutation.to(x.device)
        mirrored = self.model(mirror_about(x, centre, order, self.coords))
        return 0.5 * (self.model(x) + mirror_about(mirrored, centre, order, self.coords))
