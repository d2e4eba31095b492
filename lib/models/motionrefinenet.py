"""MotionRefineNet: a hierarchical temporal branch and a DoF-split frequency branch, averaged."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lib.models.frequency import NUM_BANDS, build_band_split
from lib.models.fused_linear import add_to_fresh, autocast_enabled, fused_linear, linear_add
from lib.models.layers import JointMixingBlock, TemporalResidualBlock, check_window

# Shortest window: with fewer frames there is too little temporal context to refine.
MIN_WINDOW_SIZE = 8
# Time scales of each hierarchical block: full, 1/2 and 1/4 of the encoded time axis.
_NUM_SCALES = 3
# Negative slopes of the encoder's and the band gates' LeakyReLU.
_ENCODER_NEGATIVE_SLOPE = 0.1
_GATE_NEGATIVE_SLOPE = 0.2


def joint_channels(joints: Sequence[int], coord_dim: int) -> list[int]:
    """Channel indices of the given joints in a joint-major (B, T, J * D) layout."""
    return [joint * coord_dim + coord for joint in joints for coord in range(coord_dim)]


class ScaleMixer(nn.Module):
    """Mix across joints, then along the (encoded) time axis, at one time scale.

    Shape:
        x: (C, B, L) -> (C, B, L)
    """

    def __init__(self, channels: int, length: int, res_hidden_size: int, joint_expansion: int,
                 dropout: float) -> None:
        super().__init__()
        self.joint_mixing = JointMixingBlock(channels, joint_expansion, dropout)
        self.time_mixing = TemporalResidualBlock(length, res_hidden_size, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.time_mixing(self.joint_mixing(x))


class HierarchicalTemporalBlock(nn.Module):
    """A U-Net over the encoded time axis with learned down- and up-sampling.

    The down path mixes at lengths H, H/2 and H/4 (Linear layers resample between them); the up
    path resamples back and adds each scale's output as a skip. Coarse scales see the whole
    window at once and learn smoothness; the full-resolution skip keeps rapid changes.

    Args:
        channels: C.
        length: H, divisible by 4.
        res_hidden_size: hidden width of the time mixing at full scale; halved per level.
        joint_expansion: hidden width of the joint mixing as a multiple of C.
        dropout: dropout probability inside the mixers.

    Shape:
        x: (C, B, H) -> (C, B, H)
    """

    def __init__(self, channels: int, length: int, res_hidden_size: int, joint_expansion: int,
                 dropout: float) -> None:
        super().__init__()
        lengths = [length >> level for level in range(_NUM_SCALES)]
        self.mixers = nn.ModuleList(
            ScaleMixer(channels, size, max(1, res_hidden_size >> level), joint_expansion,
                       dropout)
            for level, size in enumerate(lengths))
        steps = list(zip(lengths[:-1], lengths[1:], strict=True))  # (fine, coarse) per level
        self.downsamplers = nn.ModuleList(nn.Linear(fine, coarse) for fine, coarse in steps)
        self.upsamplers = nn.ModuleList(nn.Linear(coarse, fine) for fine, coarse in steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, mixer in enumerate(self.mixers):
            if level > 0:
                x = fused_linear(self.downsamplers[level - 1], x)  # (C, B, H / 2**level)
            x = mixer(x)
            skips.append(x)
        for level in reversed(range(len(self.upsamplers))):
            x = linear_add(self.upsamplers[level], x, skips[level])  # upsampled + skip
        return x


class AdaptiveBandGate(nn.Module):
    """Reweight every band element by a gate computed from the band itself.

    For each band, an MLP along time (L -> R -> L, shared over channels) and a sigmoid give a
    gate in (0, 1) per element; the output is the gated sum of the bands.

    Args:
        length: L.
        hidden_size: R, hidden width of each gate MLP.

    Shape:
        bands: (..., 3, L) -> (..., L)
    """

    def __init__(self, length: int, hidden_size: int) -> None:
        super().__init__()
        self.band_gates = nn.ModuleList(
            nn.Sequential(nn.Linear(length, hidden_size), nn.LeakyReLU(_GATE_NEGATIVE_SLOPE),
                          nn.Linear(hidden_size, length), nn.Sigmoid())
            for _ in range(NUM_BANDS))

    def _gate(self, band: int, rows: torch.Tensor) -> torch.Tensor:
        """Gate values of one band: sigmoid(MLP(rows)), each Linear fused with its activation.

        Shape:
            rows: (N, L) -> (N, L)
        """
        expand, activation, project, _ = self.band_gates[band]
        hidden = fused_linear(expand, rows, "leaky_relu", activation.negative_slope)  # (N, R)
        return fused_linear(project, hidden, "sigmoid")

    def gates(self, bands: torch.Tensor) -> torch.Tensor:
        """Gate values, one per band element. Shape: (..., 3, L) -> (..., 3, L)."""
        return torch.stack([self._gate(band, bands[..., band, :].reshape(-1, bands.shape[-1]))
                            .view(bands[..., band, :].shape) for band in range(NUM_BANDS)],
                           dim=-2)

    def forward(self, bands: torch.Tensor) -> torch.Tensor:
        return self.forward_band_major(bands.movedim(-2, 0).contiguous())

    def forward_band_major(self, bands: torch.Tensor) -> torch.Tensor:
        """The gated sum of bands given band-first (no transposed copy).

        Shape:
            bands: (3, ..., L) -> (..., L)
        """
        # unbind, not indexing: the backward of an index zero-fills all three bands each time
        rows = bands.reshape(NUM_BANDS, -1, bands.shape[-1]).unbind()  # 3 x (N, L)
        if torch.is_grad_enabled() or autocast_enabled(bands.device.type):
            gated = sum(self._gate(band, row) * row for band, row in enumerate(rows))
        else:  # accumulate in place (in fp32: under autocast the gates would be bf16)
            gated = self._gate(0, rows[0]).mul_(rows[0])
            for band in range(1, NUM_BANDS):
                gated.addcmul_(self._gate(band, rows[band]), rows[band])
        return gated.reshape(bands.shape[1:])


class DoFSplitFrequencyBranch(nn.Module):
    """Split into frequency bands and filter low- and high-DoF channels differently.

    Low-DoF channels combine the bands with learned weights (initially favouring the low band);
    high-DoF channels go through an :class:`AdaptiveBandGate`. A residual MLP along time
    follows. Either group may be empty; its parameters are then not created.

    The input must hold the low-DoF channels first (``MotionRefineNet`` orders its channels so
    once, on the small (B, T, C) input), so the groups are contiguous slices and no gather or
    scatter of the (C, B, H) features is needed.

    Args:
        channels: C.
        length: H.
        num_low_channels: the first ``num_low_channels`` channels are low-DoF, the rest high.
        res_hidden_size: hidden width of the gate MLPs and of the residual MLP.
        dropout: dropout probability inside the residual MLP.
        freq_transform: band transform name, see ``lib.models.frequency.BAND_SPLITS``.
        low_band_init: initial (low, mid, high) weights of the low-DoF group.

    Shape:
        x: (C, B, H) -> (C, B, H)
    """

    def __init__(self, channels: int, length: int, num_low_channels: int, res_hidden_size: int,
                 dropout: float, freq_transform: str, low_band_init: Sequence[float]) -> None:
        super().__init__()
        if not 0 <= num_low_channels <= channels:
            raise ValueError(f"num_low_channels must lie in [0, {channels}], got "
                             f"{num_low_channels}")
        self.group_sizes = [num_low_channels, channels - num_low_channels]
        self.band_split = build_band_split(freq_transform, length)
        self.low_band_weights = (nn.Parameter(torch.tensor(list(low_band_init)))
                                 if num_low_channels > 0 else None)
        self.high_gate = (AdaptiveBandGate(length, res_hidden_size)
                          if num_low_channels < channels else None)
        self.refine = TemporalResidualBlock(length, res_hidden_size, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # split() rather than indexing: its backward concatenates instead of zero-filling.
        low, high = x.split(self.group_sizes)  # (C_low, B, H), (C_high, B, H)
        filtered = []  # (C_low, B, H) and (C_high, B, H)
        if self.low_band_weights is not None:
            bands = self.band_split.band_major(low).reshape(NUM_BANDS, -1)  # (3, C_low * B * H)
            weighted = torch.mm(self.low_band_weights[None], bands)  # (1, C_low * B * H)
            filtered.append(weighted.view(low.shape))
        if self.high_gate is not None:
            filtered.append(self.high_gate.forward_band_major(self.band_split.band_major(high)))
        return self.refine(torch.cat(filtered))


class MotionRefineNet(nn.Module):
    """Refine pose windows with a temporal and a frequency branch over an encoded time axis.

    Each channel's T frames are encoded to H features. The temporal branch stacks
    :class:`HierarchicalTemporalBlock` s; the frequency branch is a
    :class:`DoFSplitFrequencyBranch`. Their average is decoded back to T frames. With
    ``residual`` the network predicts a correction added to the input, and the decoder starts
    at zero so an untrained model is the identity.

    Args:
        window_size: T, frames per window (at least 8).
        num_joints: J.
        coord_dim: D, coordinates per joint (2, 3 or 6 typically).
        low_dof_joints: indices of the low-DoF joints, e.g. ``Skeleton.dof_joints()[0]``.
        hidden_size: H, width of the encoded time axis; divisible by 4.
        res_hidden_size: R, hidden width of the time MLPs at full scale and of the gates.
        num_blocks: number of hierarchical temporal blocks (at least 1).
        dropout: dropout probability inside the residual MLPs.
        freq_transform: ``"fft"`` or ``"haar"``.
        low_band_init: initial (low, mid, high) band weights of the low-DoF joints.
        joint_expansion: hidden width of the joint mixing as a multiple of C.
        residual: predict a correction to the input instead of the window itself.

    Shape:
        x: (B, T, C) -> (B, T, C), C = J * D, channel j * D + d is coordinate d of joint j.
    """

    def __init__(self, window_size: int, num_joints: int, coord_dim: int,
                 low_dof_joints: Sequence[int], hidden_size: int = 512,
                 res_hidden_size: int = 128, num_blocks: int = 5, dropout: float = 0.25,
                 freq_transform: str = "fft",
                 low_band_init: tuple[float, float, float] = (0.8, 0.1, 0.1),
                 joint_expansion: int = 2, residual: bool = False) -> None:
        super().__init__()
        _check_arguments(window_size, num_joints, coord_dim, low_dof_joints, hidden_size,
                         res_hidden_size, num_blocks, low_band_init, joint_expansion)
        self.window_size = window_size
        self.channels = num_joints * coord_dim
        self.residual = residual
        self.encoder = nn.Sequential(nn.Linear(window_size, hidden_size),
                                     nn.LeakyReLU(_ENCODER_NEGATIVE_SLOPE))
        self.temporal_branch = nn.Sequential(*(
            HierarchicalTemporalBlock(self.channels, hidden_size, res_hidden_size,
                                      joint_expansion, dropout)
            for _ in range(num_blocks)))
        low_channels = joint_channels(sorted(set(low_dof_joints)), coord_dim)
        high_channels = sorted(set(range(self.channels)) - set(low_channels))
        # Internally the channels run low-DoF group first; every layer but the frequency branch
        # treats channels alike (or learns a dense mixing of them), so only the order changes.
        self.register_buffer("grouped_channels", torch.tensor(low_channels + high_channels))
        self.register_buffer("joint_major_order", torch.argsort(self.grouped_channels))
        self.frequency_branch = DoFSplitFrequencyBranch(
            self.channels, hidden_size, len(low_channels), res_hidden_size, dropout,
            freq_transform, low_band_init)
        self.decoder = nn.Linear(hidden_size, window_size)
        if residual:
            nn.init.zeros_(self.decoder.weight)
            nn.init.zeros_(self.decoder.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Refine a batch of windows.

        Args:
            x: noisy windows, joint-major channels.

        Returns:
            Refined windows.

        Shape:
            x: (B, T, C) -> (B, T, C)
        """
        check_window(x, self.window_size, self.channels)
        if x.shape[0] == 0:  # (the FFT has no empty transform)
            return x.new_zeros(x.shape)
        # Channel-major inside: (C, B, H) makes every time layer one GEMM over (C * B) rows and
        # every joint mixing one GEMM over (B * H) columns, with no transposed copies between.
        grouped = x.index_select(2, self.grouped_channels).permute(2, 0, 1)  # (C, B, T)
        linear, activation = self.encoder
        encoded = fused_linear(linear, grouped, "leaky_relu",
                               activation.negative_slope)  # (C, B, H), low-DoF channels first
        temporal, frequency = self.temporal_branch(encoded), self.frequency_branch(encoded)
        fused = add_to_fresh(temporal, frequency).mul_(0.5)
        decoded = fused_linear(self.decoder, fused).index_select(0, self.joint_major_order)
        decoded = decoded.permute(1, 2, 0)  # (B, T, C)
        return x + decoded if self.residual else decoded


def _check_arguments(window_size: int, num_joints: int, coord_dim: int,
                     low_dof_joints: Sequence[int], hidden_size: int, res_hidden_size: int,
                     num_blocks: int, low_band_init: Sequence[float],
                     joint_expansion: int) -> None:
    """Raise a ValueError naming the first invalid MotionRefineNet argument."""
    if window_size < MIN_WINDOW_SIZE:
        raise ValueError(f"MotionRefineNet needs window_size >= {MIN_WINDOW_SIZE}, got "
                         f"{window_size}")
    if hidden_size < 4 or hidden_size % 4 != 0:
        raise ValueError(f"hidden_size must be a positive multiple of 4 (the temporal branch "
                         f"works at H, H/2 and H/4), got {hidden_size}")
    for name, value in [("num_joints", num_joints), ("coord_dim", coord_dim),
                        ("res_hidden_size", res_hidden_size), ("num_blocks", num_blocks),
                        ("joint_expansion", joint_expansion)]:
        if value < 1:
            raise ValueError(f"{name} must be positive, got {value}")
    if any(not 0 <= joint < num_joints for joint in low_dof_joints):
        raise ValueError(f"low_dof_joints {tuple(low_dof_joints)} must lie in "
                         f"[0, {num_joints})")
    if len(low_band_init) != NUM_BANDS:
        raise ValueError(f"low_band_init needs {NUM_BANDS} values (low, mid, high), got "
                         f"{tuple(low_band_init)}")
