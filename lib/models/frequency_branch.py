"""MotionRefineNet's frequency branch: DoF-split filtering of frequency bands."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lib.models.frequency import NUM_BANDS, build_band_split
from lib.models.layers import JointMixingBlock, TemporalResidualBlock

# Negative slope of the band gates' LeakyReLU.
_GATE_NEGATIVE_SLOPE = 0.2


class BandGate(nn.Module):
    """Adaptive filter: reweight every band element by a gate computed from the band itself.

    For each band an MLP over the band's values (n -> R -> n, shared over channels) and a
    sigmoid give a gate in (0, 1) per value; a bounded gate, so no division can blow up.

    Args:
        band_sizes: n of each band (coefficient counts, or L for band signals).
        hidden_size: R, hidden width of each gate MLP.

    Shape:
        bands: [(..., n_b)] * 3 -> [(..., n_b)] * 3
    """

    def __init__(self, band_sizes: Sequence[int], hidden_size: int) -> None:
        super().__init__()
        self.band_gates = nn.ModuleList(
            nn.Sequential(nn.Linear(size, hidden_size), nn.LeakyReLU(_GATE_NEGATIVE_SLOPE),
                          nn.Linear(hidden_size, size), nn.Sigmoid())
            for size in band_sizes)

    def forward(self, bands: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [band * gate(band) for band, gate in zip(bands, self.band_gates, strict=True)]


class DoFFrequencyBlock(nn.Module):
    """Band split; low-DoF channels weighted, high-DoF channels gated; inverse transform.

    In the paper's form (``in_coefficients``) the block filters each band's transform
    coefficients (FFT: the real and imaginary parts of the band's bins; Haar: a2, d2, d1),
    inverts the transform once, mixes joints and adds its input (identity path). The lean form
    filters the three band signals, sums them and refines them with one residual MLP along
    time. Either DoF group may be empty; its filter is then not created.

    The input holds the low-DoF channels first (``MotionRefineNet`` orders them so), so the
    groups are contiguous slices.

    Args:
        channels: C.
        length: L, the encoded time axis.
        num_low_channels: the first ``num_low_channels`` channels are low-DoF, the rest high.
        hidden_size: R, hidden width of the gate MLPs (and of the lean form's time MLP).
        dropout: dropout probability in the joint mixing (or the lean time MLP).
        freq_transform: band transform name, see ``lib.models.frequency.BAND_SPLITS``.
        low_band_init: initial (low, mid, high) weights of the low-DoF group.
        learn_band_weights: learn those weights or keep them fixed.
        in_coefficients: filter transform coefficients (paper) or band signals (lean).
        low_band_projection: a learned projection per band for the low-DoF group.
        joint_hidden_size: hidden width of the joint-mixing MLP; 0 for none.
        identity: add the block's input to its output.
        time_mixing: a residual MLP along time after the inverse transform (lean form).

    Shape:
        x: (B, C, L) -> (B, C, L)
    """

    def __init__(self, channels: int, length: int, num_low_channels: int, hidden_size: int,
                 dropout: float, freq_transform: str, low_band_init: Sequence[float], *,
                 learn_band_weights: bool = True, in_coefficients: bool = True,
                 low_band_projection: bool = True, joint_hidden_size: int = 512,
                 identity: bool = True, time_mixing: bool = False) -> None:
        super().__init__()
        if not 0 <= num_low_channels <= channels:
            raise ValueError(f"num_low_channels must lie in [0, {channels}], got "
                             f"{num_low_channels}")
        self.group_sizes = [num_low_channels, channels - num_low_channels]
        self.in_coefficients, self.identity = in_coefficients, identity
        self.band_split = build_band_split(freq_transform, length)
        sizes = self.band_split.band_sizes if in_coefficients else (length,) * NUM_BANDS
        if num_low_channels:
            self._build_low_filter(sizes, low_band_init, learn_band_weights, low_band_projection)
        else:
            self.low_band_weights = self.low_projections = None
        self.high_gate = BandGate(sizes, hidden_size) if num_low_channels < channels else None
        self.refine = (TemporalResidualBlock(length, hidden_size, dropout) if time_mixing
                       else None)
        self.joint_mixing = (JointMixingBlock(channels, joint_hidden_size, dropout)
                             if joint_hidden_size else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bands = self._analyze(x)  # 3 x (B, C, n_b)
        # split() rather than indexing: its backward concatenates instead of zero-filling.
        low, high = zip(*(band.split(self.group_sizes, dim=1) for band in bands), strict=True)
        groups = []  # per DoF group, 3 x (B, C_group, n_b)
        if self.low_band_weights is not None:
            groups.append(self._filter_low(low))
        if self.high_gate is not None:
            groups.append(self.high_gate(high))
        filtered = self._synthesize([torch.cat(parts, dim=1) for parts in zip(*groups)])
        if self.refine is not None:
            filtered = self.refine(filtered)
        if self.joint_mixing is not None:
            filtered = self.joint_mixing(filtered)
        return x + filtered if self.identity else filtered

    def _build_low_filter(self, band_sizes: Sequence[int], band_init: Sequence[float],
                          learn_weights: bool, projection: bool) -> None:
        """The low-DoF filter's band weights (parameter or fixed buffer) and projections."""
        weights = torch.tensor([float(weight) for weight in band_init])
        if learn_weights:
            self.low_band_weights = nn.Parameter(weights)
        else:
            self.register_buffer("low_band_weights", weights)
        self.low_projections = (nn.ModuleList(nn.Linear(size, size) for size in band_sizes)
                                if projection else None)
        for project in self.low_projections or ():
            # Start as the identity, so that the initial filter is the 0.8 / 0.1 / 0.1 weighting.
            nn.init.eye_(project.weight)
            nn.init.zeros_(project.bias)

    def _filter_low(self, bands: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """One learned projection per band, then the band weighting. Shape: 3 x (B, C_low, n_b)."""
        if self.low_projections is not None:
            bands = [project(band) for band, project in zip(bands, self.low_projections,
                                                            strict=True)]
        return [weight * band for weight, band in zip(self.low_band_weights, bands, strict=True)]

    def _analyze(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.in_coefficients:
            return self.band_split.analyze(x)
        return list(self.band_split.band_major(x).unbind())  # band signals: 3 x (B, C, L)

    def _synthesize(self, bands: list[torch.Tensor]) -> torch.Tensor:
        if self.in_coefficients:
            return self.band_split.synthesize(bands)
        return bands[0] + bands[1] + bands[2]  # band signals sum to the signal
