"""MotionRefineNet: a hierarchical temporal branch and a DoF-split frequency branch, averaged."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lib.models.frequency import NUM_BANDS
from lib.models.frequency_branch import DoFFrequencyBlock
from lib.models.layers import JointMixingBlock, TemporalResidualBlock, check_window

# Shortest window: with fewer frames there is too little temporal context to refine.
MIN_WINDOW_SIZE = 8
# Time scales of each hierarchical block: full, 1/2 and 1/4 of the encoded time axis.
_NUM_SCALES = 3
# Negative slope of the encoder's LeakyReLU.
_ENCODER_NEGATIVE_SLOPE = 0.1
# Constructor arguments that select the lean (pre-paper) network, as checkpoints written before
# they existed were built: create_model fills a checkpoint's missing arguments with these.
LEAN_ARCHITECTURE = {"joint_hidden_size": 0, "freq_stacked": False,
                     "low_band_projection": False, "learn_band_weights": True,
                     "freq_joint_mixing": False, "freq_identity": False,
                     "time_layernorm": False, "halve_res_hidden": True, "up_path_mixing": False}


def joint_channels(joints: Sequence[int], coord_dim: int) -> list[int]:
    """Channel indices of the given joints in a joint-major (B, T, J * D) layout."""
    return [joint * coord_dim + coord for joint in joints for coord in range(coord_dim)]


class ScaleMixer(nn.Module):
    """Mix across joints, then along the (encoded) time axis, at one time scale.

    Shape:
        x: (B, C, L) -> (B, C, L)
    """

    def __init__(self, channels: int, length: int, res_hidden_size: int, joint_hidden_size: int,
                 dropout: float, time_layernorm: bool) -> None:
        super().__init__()
        self.joint_mixing = JointMixingBlock(channels, joint_hidden_size, dropout)
        self.time_mixing = TemporalResidualBlock(length, res_hidden_size, dropout,
                                                 norm=time_layernorm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.time_mixing(self.joint_mixing(x))


class HierarchicalTemporalBlock(nn.Module):
    """A U-Net over the encoded time axis with learned down- and up-sampling.

    The down path mixes at lengths H, H/2 and H/4 (Linear layers along time resample between
    them); the up path resamples back, adds each scale's down-path output as a skip and (with
    ``up_path_mixing``) mixes again. Coarse scales see the whole window at once and learn
    smoothness; the full-resolution skip keeps rapid changes.

    Args:
        channels: C.
        length: H, divisible by 4.
        res_hidden_size: R, hidden width of the time mixing.
        joint_hidden_size: hidden width of the joint mixing.
        dropout: dropout probability inside the mixers.
        time_layernorm: LayerNorm over time before each time MLP.
        halve_res_hidden: R / 2**level at coarser scales instead of R everywhere.
        up_path_mixing: a joint- and time-mixing step at each scale of the up path too.

    Shape:
        x: (B, C, H) -> (B, C, H)
    """

    def __init__(self, channels: int, length: int, res_hidden_size: int, joint_hidden_size: int,
                 dropout: float, time_layernorm: bool = True, halve_res_hidden: bool = False,
                 up_path_mixing: bool = True) -> None:
        super().__init__()
        lengths = [length >> level for level in range(_NUM_SCALES)]

        def mixer(level: int) -> ScaleMixer:
            hidden = max(1, res_hidden_size >> level) if halve_res_hidden else res_hidden_size
            return ScaleMixer(channels, lengths[level], hidden, joint_hidden_size, dropout,
                              time_layernorm)

        self.mixers = nn.ModuleList(mixer(level) for level in range(_NUM_SCALES))
        steps = list(zip(lengths[:-1], lengths[1:], strict=True))  # (fine, coarse) per level
        self.downsamplers = nn.ModuleList(nn.Linear(fine, coarse) for fine, coarse in steps)
        self.upsamplers = nn.ModuleList(nn.Linear(coarse, fine) for fine, coarse in steps)
        self.up_mixers = (nn.ModuleList(mixer(level) for level in range(len(steps)))
                          if up_path_mixing else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, mixer in enumerate(self.mixers):
            if level > 0:
                x = self.downsamplers[level - 1](x)  # (B, C, H / 2**level)
            x = mixer(x)
            skips.append(x)
        for level in reversed(range(len(self.upsamplers))):
            x = self.upsamplers[level](x) + skips[level]
            if self.up_mixers is not None:
                x = self.up_mixers[level](x)
        return x


class MotionRefineNet(nn.Module):
    """Refine pose windows with a temporal and a frequency branch over an encoded time axis.

    Each channel's T frames are encoded to H features. The temporal branch stacks
    ``num_blocks`` :class:`HierarchicalTemporalBlock` s, the frequency branch ``num_blocks``
    :class:`DoFFrequencyBlock` s (with ``freq_stacked`` False: one block, no stack). Their
    average is decoded back to T frames. With ``residual`` the network predicts a correction
    added to the input, and the decoder starts at zero so an untrained model is the identity.
    The defaults are the paper's network; :data:`LEAN_ARCHITECTURE` selects the lean one.

    Args:
        window_size: T, frames per window (at least 8).
        num_joints: J.
        coord_dim: D, coordinates per joint (2, 3 or 6 typically).
        low_dof_joints: indices of the low-DoF joints, e.g. ``Skeleton.dof_joints()[0]``.
        hidden_size: H, width of the encoded time axis; divisible by 4.
        res_hidden_size: R, hidden width of the time MLPs and of the band gates.
        num_blocks: number of blocks per branch (at least 1).
        dropout: dropout probability inside the blocks.
        freq_transform: ``"fft"`` or ``"haar"``.
        low_band_init: initial (low, mid, high) band weights of the low-DoF joints.
        joint_expansion: joint-mixing hidden width as a multiple of C when
            ``joint_hidden_size`` is 0.
        residual: predict a correction to the input instead of the window itself.
        joint_hidden_size: hidden width of every joint-mixing MLP (released: 512).
        freq_stacked: ``num_blocks`` frequency blocks filtering transform coefficients (else
            one block filtering band signals, followed by a time MLP).
        low_band_projection: a learned projection per band for the low-DoF joints.
        learn_band_weights: learn the low-DoF band weighting (else fixed at its init).
        freq_joint_mixing: a joint-mixing MLP in each frequency block.
        freq_identity: an identity path around each frequency block.
        time_layernorm: LayerNorm over time before each time MLP of the temporal branch.
        halve_res_hidden: halve R per level of the temporal U-Net.
        up_path_mixing: joint and time mixing on the U-Net's up path too.
        freq_num_blocks: frequency blocks when stacked; 0 means ``num_blocks``.
        use_temporal_branch, use_frequency_branch: build that branch (ablations; at least one).

    Shape:
        x: (B, T, C) -> (B, T, C), C = J * D, channel j * D + d is coordinate d of joint j.
    """

    def __init__(self, window_size: int, num_joints: int, coord_dim: int,
                 low_dof_joints: Sequence[int], hidden_size: int = 512,
                 res_hidden_size: int = 128, num_blocks: int = 5, dropout: float = 0.25,
                 freq_transform: str = "fft",
                 low_band_init: tuple[float, float, float] = (0.8, 0.1, 0.1),
                 joint_expansion: int = 2, residual: bool = False, joint_hidden_size: int = 512,
                 freq_stacked: bool = True, low_band_projection: bool = True,
                 learn_band_weights: bool = True, freq_joint_mixing: bool = True,
                 freq_identity: bool = True, time_layernorm: bool = True,
                 halve_res_hidden: bool = False, up_path_mixing: bool = True,
                 freq_num_blocks: int = 0, use_temporal_branch: bool = True,
                 use_frequency_branch: bool = True) -> None:
        super().__init__()
        _check_arguments(window_size, num_joints, coord_dim, low_dof_joints, hidden_size,
                         res_hidden_size, num_blocks, low_band_init, joint_expansion,
                         joint_hidden_size)
        if not (use_temporal_branch or use_frequency_branch):
            raise ValueError("MotionRefineNet needs at least one of its two branches")
        if freq_num_blocks < 0:
            raise ValueError(f"freq_num_blocks must be >= 0 (0: num_blocks), got "
                             f"{freq_num_blocks}")
        self.window_size = window_size
        self.channels = num_joints * coord_dim
        self.residual = residual
        joint_hidden = joint_hidden_size or joint_expansion * self.channels
        self.encoder = nn.Sequential(nn.Linear(window_size, hidden_size),
                                     nn.LeakyReLU(_ENCODER_NEGATIVE_SLOPE))
        self.temporal_branch = nn.Sequential(*(
            HierarchicalTemporalBlock(self.channels, hidden_size, res_hidden_size, joint_hidden,
                                      dropout, time_layernorm, halve_res_hidden, up_path_mixing)
            for _ in range(num_blocks))) if use_temporal_branch else None
        low_channels = joint_channels(sorted(set(low_dof_joints)), coord_dim)
        high_channels = sorted(set(range(self.channels)) - set(low_channels))
        # Internally the channels run low-DoF group first; every layer but the frequency branch
        # treats channels alike (or learns a dense mixing of them), so only the order changes.
        self.register_buffer("grouped_channels", torch.tensor(low_channels + high_channels))
        self.register_buffer("joint_major_order", torch.argsort(self.grouped_channels))
        blocks = [
            DoFFrequencyBlock(self.channels, hidden_size, len(low_channels), res_hidden_size,
                              dropout, freq_transform, low_band_init,
                              learn_band_weights=learn_band_weights,
                              in_coefficients=freq_stacked,
                              low_band_projection=low_band_projection,
                              joint_hidden_size=joint_hidden if freq_joint_mixing else 0,
                              identity=freq_identity, time_mixing=not freq_stacked)
            for _ in range((freq_num_blocks or num_blocks) if freq_stacked else 1)]
        # The lean branch is its single block, so its parameter names are those that
        # checkpoints written before the stacked branch existed hold.
        self.frequency_branch = ((nn.Sequential(*blocks) if freq_stacked else blocks[0])
                                 if use_frequency_branch else None)
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
        grouped = x.index_select(2, self.grouped_channels).transpose(1, 2)  # (B, C, T)
        encoded = self.encoder(grouped)  # (B, C, H), low-DoF channels first
        branches = [branch for branch in (self.temporal_branch, self.frequency_branch)
                    if branch is not None]
        fused = sum(branch(encoded) for branch in branches) / len(branches)  # their average
        decoded = self.decoder(fused).index_select(1, self.joint_major_order)  # (B, C, T)
        decoded = decoded.transpose(1, 2)  # (B, T, C)
        return x + decoded if self.residual else decoded


def _check_arguments(window_size: int, num_joints: int, coord_dim: int,
                     low_dof_joints: Sequence[int], hidden_size: int, res_hidden_size: int,
                     num_blocks: int, low_band_init: Sequence[float], joint_expansion: int,
                     joint_hidden_size: int) -> None:
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
    if joint_hidden_size < 0:
        raise ValueError(f"joint_hidden_size must be >= 0 (0: joint_expansion x C), got "
                         f"{joint_hidden_size}")
    if any(not 0 <= joint < num_joints for joint in low_dof_joints):
        raise ValueError(f"low_dof_joints {tuple(low_dof_joints)} must lie in "
                         f"[0, {num_joints})")
    if len(low_band_init) != NUM_BANDS:
        raise ValueError(f"low_band_init needs {NUM_BANDS} values (low, mid, high), got "
                         f"{tuple(low_band_init)}")
