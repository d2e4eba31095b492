"""Tests of lib.models: shapes, band splits, parameter and FLOP counts, gradients, devices."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from lib.data.skeletons import get_skeleton
from lib.models import MODELS, MotionRefineNet, SmoothNet, count_parameters, create_model
from lib.models.frequency import FFTBandSplit, HaarBandSplit, build_band_split
from lib.models.frequency_branch import BandGate, DoFFrequencyBlock
from lib.models.motionrefinenet import LEAN_ARCHITECTURE, joint_channels

SKELETONS = ("bandai21", "lsp14", "h36m17", "smpl24")
COORD_DIMS = (2, 3, 6)
WINDOWS = (8, 16, 32, 64)


def small_motionrefinenet(skeleton: str, coord_dim: int, window: int,
                          **overrides) -> MotionRefineNet:
    """A fast MotionRefineNet for the given skeleton; keyword overrides replace defaults."""
    low, _ = get_skeleton(skeleton).dof_joints()
    kwargs = dict(window_size=window, num_joints=get_skeleton(skeleton).num_joints,
                  coord_dim=coord_dim, low_dof_joints=tuple(low),
                  hidden_size=64 if window >= 32 else 32, res_hidden_size=16, num_blocks=1,
                  dropout=0.1, joint_hidden_size=16)
    kwargs.update(overrides)
    return MotionRefineNet(**kwargs)


# ----------------------------------------------------------------------------------------------
# Shapes
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("coord_dim", COORD_DIMS)
@pytest.mark.parametrize("skeleton", SKELETONS)
def test_smoothnet_keeps_shape(skeleton: str, coord_dim: int, window: int) -> None:
    model = SmoothNet(window, hidden_size=32, res_hidden_size=16, num_blocks=1)
    x = torch.randn(2, window, get_skeleton(skeleton).num_joints * coord_dim)
    assert model(x).shape == x.shape


@pytest.mark.parametrize("freq_transform", ("fft", "haar"))
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("coord_dim", COORD_DIMS)
@pytest.mark.parametrize("skeleton", SKELETONS)
def test_motionrefinenet_keeps_shape(skeleton: str, coord_dim: int, window: int,
                                     freq_transform: str) -> None:
    model = small_motionrefinenet(skeleton, coord_dim, window, freq_transform=freq_transform,
                                  residual=False)
    x = torch.randn(2, window, get_skeleton(skeleton).num_joints * coord_dim)
    assert model(x).shape == x.shape


def test_bad_inputs_raise() -> None:
    model = small_motionrefinenet("lsp14", 3, 16)
    for bad in (torch.randn(16, 42), torch.randn(2, 17, 42), torch.randn(2, 16, 41)):
        with pytest.raises(ValueError):
            model(bad)
    with pytest.raises(ValueError):
        SmoothNet(16)(torch.randn(2, 8, 42))


@pytest.mark.parametrize("window", (1, 4, 7))
def test_short_window_raises(window: int) -> None:
    with pytest.raises(ValueError, match="window_size"):
        small_motionrefinenet("lsp14", 3, window)


def test_hidden_size_not_divisible_by_4_raises() -> None:
    with pytest.raises(ValueError, match="hidden_size"):
        small_motionrefinenet("lsp14", 3, 16, hidden_size=30)


def test_registry() -> None:
    assert set(MODELS) == {"smoothnet", "motionrefinenet"}
    assert isinstance(create_model("smoothnet", window_size=8), SmoothNet)
    with pytest.raises(KeyError, match="motionrefinenet"):
        create_model("smoothnett", window_size=8)
    with pytest.raises(KeyError, match="haar"):
        build_band_split("wavelet", 32)


# ----------------------------------------------------------------------------------------------
# Band splits
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ("fft", "haar"))
@pytest.mark.parametrize("length", (8, 32, 64, 512))
def test_bands_sum_to_input(name: str, length: int) -> None:
    x = torch.randn(3, 5, length)
    bands = build_band_split(name, length)(x)
    assert bands.shape == (3, 5, 3, length)
    torch.testing.assert_close(bands.sum(dim=-2), x, atol=1e-5, rtol=0)


def test_fft_bands_of_sinusoids() -> None:
    length = 64
    time = torch.arange(length, dtype=torch.float32)
    slow = torch.sin(2 * math.pi * 2 * time / length)  # f = 2/64, below the 0.125 edge
    fast = torch.cos(2 * math.pi * 20 * time / length)  # f = 20/64, above the 0.25 edge
    low, mid, high = FFTBandSplit(length)(slow).unbind(dim=-2)
    torch.testing.assert_close(low, slow, atol=1e-5, rtol=0)
    assert mid.abs().max() < 1e-5 and high.abs().max() < 1e-5
    low, mid, high = FFTBandSplit(length)(fast).unbind(dim=-2)
    torch.testing.assert_close(high, fast, atol=1e-5, rtol=0)
    assert low.abs().max() < 1e-5 and mid.abs().max() < 1e-5


def test_haar_bands_of_simple_signals() -> None:
    constant = torch.full((16,), 3.0)
    low, mid, high = HaarBandSplit(16)(constant).unbind(dim=-2)
    torch.testing.assert_close(low, constant)
    assert mid.abs().max() < 1e-6 and high.abs().max() < 1e-6
    alternating = torch.tensor([1.0, -1.0] * 8)  # lives entirely in the level-1 detail
    low, mid, high = HaarBandSplit(16)(alternating).unbind(dim=-2)
    torch.testing.assert_close(high, alternating)
    assert low.abs().max() < 1e-6 and mid.abs().max() < 1e-6


@pytest.mark.parametrize("length", (2, 6, 30, 34))
def test_haar_needs_length_divisible_by_4(length: int) -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        HaarBandSplit(length)


def test_band_split_checks_length() -> None:
    with pytest.raises(ValueError, match="length 32"):
        FFTBandSplit(32)(torch.randn(2, 31))


# ----------------------------------------------------------------------------------------------
# Parameter and FLOP counts, from formulas written out layer by layer
# ----------------------------------------------------------------------------------------------

def linear_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def residual_mlp_params(size: int, hidden: int) -> int:
    return linear_params(size, hidden) + linear_params(hidden, size)


def smoothnet_param_formula(window: int, hidden: int, res_hidden: int, blocks: int) -> int:
    encoder = linear_params(window, hidden)
    residual_blocks = blocks * residual_mlp_params(hidden, res_hidden)
    decoder = linear_params(hidden, window)
    return encoder + residual_blocks + decoder


def fft_band_sizes(length: int) -> tuple[int, int, int]:
    """Real coefficients per FFT band (edges 1/8 and 1/4 cycle per sample): real and imaginary
    parts of each band's bins, less the always-zero imaginary parts of the DC and (even L)
    Nyquist bins; L in all."""
    low_bins, low_mid_bins, bins = math.ceil(length / 8), math.ceil(length / 4), length // 2 + 1
    return (2 * low_bins - 1, 2 * (low_mid_bins - low_bins),
            2 * (bins - low_mid_bins) - (1 - length % 2))


def band_sizes(freq_transform: str, length: int) -> tuple[int, int, int]:
    if freq_transform == "haar":
        return length // 4, length // 4, length // 2  # a2, d2, d1
    return fft_band_sizes(length)


def full_param_formula(window: int, channels: int, low_channels: int, hidden: int,
                       res_hidden: int, blocks: int, joint_hidden: int,
                       freq_transform: str = "fft") -> int:
    """The paper's network: U-Net mixers down (3 scales) and up (2), stacked DoF blocks."""
    joint_mixing = 2 * channels + residual_mlp_params(channels, joint_hidden)  # LN + MLP
    lengths = [hidden, hidden // 2, hidden // 4]
    mixers = [joint_mixing + 2 * length + residual_mlp_params(length, res_hidden)  # LN + MLP
              for length in lengths]
    resampling = (linear_params(hidden, hidden // 2) + linear_params(hidden // 2, hidden // 4)
                  + linear_params(hidden // 4, hidden // 2) + linear_params(hidden // 2, hidden))
    temporal_block = sum(mixers) + mixers[0] + mixers[1] + resampling
    sizes = band_sizes(freq_transform, hidden)
    low_filter = (3 + sum(linear_params(n, n) for n in sizes)) if low_channels else 0
    high_gate = (sum(residual_mlp_params(n, res_hidden) for n in sizes)
                 if low_channels < channels else 0)
    frequency_block = low_filter + high_gate + joint_mixing
    codec = linear_params(window, hidden) + linear_params(hidden, window)
    return codec + blocks * (temporal_block + frequency_block)


def lean_param_formula(window: int, channels: int, low_channels: int, hidden: int,
                       res_hidden: int, blocks: int, expansion: int = 2) -> int:
    """The lean network: down-path mixers only, R halved per level, one frequency block."""
    encoder = linear_params(window, hidden)
    joint_mixing = 2 * channels + residual_mlp_params(channels, expansion * channels)  # LN + MLP
    time_mixing = (residual_mlp_params(hidden, res_hidden)
                   + residual_mlp_params(hidden // 2, res_hidden // 2)
                   + residual_mlp_params(hidden // 4, res_hidden // 4))
    downsampling = linear_params(hidden, hidden // 2) + linear_params(hidden // 2, hidden // 4)
    upsampling = linear_params(hidden // 4, hidden // 2) + linear_params(hidden // 2, hidden)
    block = 3 * joint_mixing + time_mixing + downsampling + upsampling
    low_band_weights = 3 if low_channels > 0 else 0
    band_gates = 3 * residual_mlp_params(hidden, res_hidden) if low_channels < channels else 0
    frequency_branch = low_band_weights + band_gates + residual_mlp_params(hidden, res_hidden)
    decoder = linear_params(hidden, window)
    return encoder + blocks * block + frequency_branch + decoder


def linear_flops(rows: int, n_in: int, n_out: int) -> int:
    return 2 * rows * n_in * n_out


def residual_mlp_flops(rows: int, size: int, hidden_size: int) -> int:
    return linear_flops(rows, size, hidden_size) + linear_flops(rows, hidden_size, size)


def full_flop_formula(window: int, channels: int, low_channels: int, hidden: int,
                      res_hidden: int, blocks: int, joint_hidden: int) -> int:
    """Forward FLOPs of one window: 2 x multiply-adds of every Linear (torch's counter counts
    products only: the FFT, norms and elementwise gating are not in it)."""
    def mixer(length: int) -> int:
        return (residual_mlp_flops(length, channels, joint_hidden)  # joint mixing, per frame
                + residual_mlp_flops(channels, length, res_hidden))  # time mixing, per channel

    lengths = [hidden, hidden // 2, hidden // 4]
    temporal_block = (sum(mixer(length) for length in lengths) + mixer(lengths[0])
                      + mixer(lengths[1])
                      + 2 * (linear_flops(channels, hidden, hidden // 2)
                             + linear_flops(channels, hidden // 2, hidden // 4)))
    sizes = fft_band_sizes(hidden)
    high_channels = channels - low_channels
    frequency_block = (sum(linear_flops(low_channels, n, n) for n in sizes)
                       + sum(residual_mlp_flops(high_channels, n, res_hidden) for n in sizes)
                       + residual_mlp_flops(hidden, channels, joint_hidden))
    codec = linear_flops(channels, window, hidden) + linear_flops(channels, hidden, window)
    return codec + blocks * (temporal_block + frequency_block)


def aist_motionrefinenet(freq_transform: str = "fft", **overrides) -> MotionRefineNet:
    """The released aist setting: T 32, LSP 14 joints x 3, H 512, R 128, 5 blocks."""
    low, _ = get_skeleton("lsp14").dof_joints()
    return MotionRefineNet(window_size=32, num_joints=14, coord_dim=3, low_dof_joints=tuple(low),
                           hidden_size=512, res_hidden_size=128, num_blocks=5, dropout=0.25,
                           freq_transform=freq_transform, **overrides)


def test_motionrefinenet_aist_parameter_count() -> None:
    """The paper's network at aist: the formula, and the release's capacity (5.95 M) +- 25 %."""
    low, _ = get_skeleton("lsp14").dof_joints()
    for freq_transform in ("fft", "haar"):
        counted = count_parameters(aist_motionrefinenet(freq_transform))
        print(f"MotionRefineNet aist ({freq_transform}) parameters: {counted:,}")
        assert counted == full_param_formula(32, 42, 3 * len(low), 512, 128, 5, 512,
                                             freq_transform)
        assert 4.5e6 <= counted <= 7.5e6
    lean = count_parameters(aist_motionrefinenet(**LEAN_ARCHITECTURE))
    print(f"MotionRefineNet aist (lean) parameters: {lean:,}")
    assert lean == lean_param_formula(32, 42, 3 * len(low), 512, 128, 5) == 3_179_073


def test_smoothnet_aist_parameter_count() -> None:
    counted = count_parameters(SmoothNet(32, hidden_size=512, res_hidden_size=256, num_blocks=3))
    print(f"SmoothNet aist parameters: {counted:,}")
    assert counted == smoothnet_param_formula(32, 512, 256, 3) == 822_048


@pytest.mark.parametrize("skeleton", ("lsp14", "smpl24"))
@pytest.mark.parametrize("freq_transform", ("fft", "haar"))
def test_small_parameter_count_matches_formula(skeleton: str, freq_transform: str) -> None:
    low, _ = get_skeleton(skeleton).dof_joints()
    channels = get_skeleton(skeleton).num_joints * 6
    full = small_motionrefinenet(skeleton, 6, 16, num_blocks=2, joint_hidden_size=24,
                                 freq_transform=freq_transform)
    assert count_parameters(full) == full_param_formula(16, channels, 6 * len(low), 32, 16, 2,
                                                        24, freq_transform)
    lean = small_motionrefinenet(skeleton, 6, 16, num_blocks=2,
                                 **{**LEAN_ARCHITECTURE, "joint_expansion": 3})
    assert count_parameters(lean) == lean_param_formula(16, channels, 6 * len(low), 32, 16, 2,
                                                        expansion=3)


@pytest.mark.parametrize("length", (16, 17, 32, 512))
def test_fft_band_sizes_formula(length: int) -> None:
    assert FFTBandSplit(length).band_sizes == fft_band_sizes(length)


def test_motionrefinenet_aist_flops() -> None:
    low, _ = get_skeleton("lsp14").dof_joints()
    model = aist_motionrefinenet().eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 32, 42))
    expected = full_flop_formula(32, 42, 3 * len(low), 512, 128, 5, 512)
    print(f"MotionRefineNet aist forward: {expected / 1e9:.3f} GFLOP per window")
    assert counter.get_total_flops() == expected


# ----------------------------------------------------------------------------------------------
# Gradients, gates, structure and initial behaviour
# ----------------------------------------------------------------------------------------------

def assert_every_parameter_has_gradient(model: torch.nn.Module, x: torch.Tensor) -> None:
    model.zero_grad()
    model(x).square().mean().backward()
    missing = [name for name, parameter in model.named_parameters()
               if parameter.grad is None or not parameter.grad.abs().sum() > 0]
    assert not missing, f"parameters without gradient: {missing}"


@pytest.mark.parametrize("architecture", ("full", "lean"))
@pytest.mark.parametrize("freq_transform", ("fft", "haar"))
@pytest.mark.parametrize("low_dof_joints", ("skeleton", "all", "none"))
def test_every_parameter_gets_gradient(architecture: str, freq_transform: str,
                                       low_dof_joints: str) -> None:
    low = {"skeleton": tuple(get_skeleton("lsp14").dof_joints()[0]),
           "all": tuple(range(14)), "none": ()}[low_dof_joints]
    extra = LEAN_ARCHITECTURE if architecture == "lean" else {"joint_hidden_size": 16}
    model = small_motionrefinenet("lsp14", 3, 16, num_blocks=2, residual=False,
                                  freq_transform=freq_transform, low_dof_joints=low, **extra)
    assert_every_parameter_has_gradient(model, torch.randn(4, 16, 42))


def test_every_parameter_gets_gradient_with_residual_after_decoder_perturbation() -> None:
    model = small_motionrefinenet("h36m17", 2, 32, joint_hidden_size=16)
    with torch.no_grad():
        model.decoder.weight.normal_(std=0.1)
    assert_every_parameter_has_gradient(model, torch.randn(4, 32, 34))


def test_smoothnet_every_parameter_gets_gradient() -> None:
    model = SmoothNet(16, hidden_size=32, res_hidden_size=16, num_blocks=2)
    assert_every_parameter_has_gradient(model, torch.randn(4, 16, 42))


@pytest.mark.parametrize("freq_transform", ("fft", "haar"))
def test_high_dof_gate_depends_on_input(freq_transform: str) -> None:
    band_split = build_band_split(freq_transform, 32)
    gate = BandGate(band_split.band_sizes, 16)
    gates = [[mlp(band) for band, mlp in zip(band_split.analyze(torch.randn(2, 24, 32)),
                                             gate.band_gates, strict=True)] for _ in range(2)]
    for first, second, size in zip(*gates, band_split.band_sizes, strict=True):
        assert first.shape == (2, 24, size)
        assert ((first > 0) & (first < 1)).all()
        assert (first - second).abs().max() > 1e-3


@pytest.mark.parametrize("learn", (True, False))
def test_low_band_weights_start_at_init(learn: bool) -> None:
    model = small_motionrefinenet("lsp14", 3, 16, low_band_init=(0.7, 0.2, 0.1),
                                  learn_band_weights=learn)
    weights = model.frequency_branch[0].low_band_weights
    torch.testing.assert_close(weights.detach(), torch.tensor([0.7, 0.2, 0.1]))
    assert isinstance(weights, torch.nn.Parameter) == learn
    assert "frequency_branch.0.low_band_weights" in model.state_dict()


@pytest.mark.parametrize("freq_transform", ("fft", "haar"))
def test_low_dof_filter_starts_as_the_band_weighting(freq_transform: str) -> None:
    """Projections start as the identity: the low-DoF filter is sum_b w_b band_b at init."""
    block = small_motionrefinenet("lsp14", 3, 16, freq_transform=freq_transform,
                                  low_dof_joints=tuple(range(14))).frequency_branch[0]
    x = torch.randn(2, 42, 32)
    band_signals = block.band_split(x)  # (B, C, 3, L)
    expected = torch.einsum("b,ncbl->ncl", torch.tensor([0.8, 0.1, 0.1]), band_signals)
    filtered = block.band_split.synthesize(block._filter_low(block.band_split.analyze(x)))
    torch.testing.assert_close(filtered, expected, atol=1e-5, rtol=1e-5)


def test_channel_groups_follow_skeleton_names() -> None:
    low, high = get_skeleton("lsp14").dof_joints()
    model = small_motionrefinenet("lsp14", 3, 16)
    expected = joint_channels(low, 3) + joint_channels(high, 3)
    assert model.grouped_channels.tolist() == expected
    assert model.grouped_channels[model.joint_major_order].tolist() == list(range(42))
    assert model.frequency_branch[0].group_sizes == [3 * len(low), 3 * len(high)]


def test_structure_is_visible() -> None:
    """Stacked blocks per NUM_BLOCKS in both branches; the paper's parts show when printed."""
    model = small_motionrefinenet("lsp14", 3, 16, num_blocks=3)
    assert len(model.temporal_branch) == len(model.frequency_branch) == 3
    assert all(isinstance(block, DoFFrequencyBlock) for block in model.frequency_branch)
    text = repr(model)
    for part in ("HierarchicalTemporalBlock", "up_mixers", "DoFFrequencyBlock", "low_projections",
                 "BandGate", "Sigmoid", "GELU", "LayerNorm((32,)"):
        assert part in text, part
    lean = small_motionrefinenet("lsp14", 3, 16, num_blocks=3, **LEAN_ARCHITECTURE)
    assert isinstance(lean.frequency_branch, DoFFrequencyBlock)  # one block, lean key names
    assert "up_mixers" not in repr(lean)


def test_forward_hooks_fire_on_every_declared_layer() -> None:
    """Declared activations, norms and dropouts run as modules (forward hooks see them)."""
    model = small_motionrefinenet("lsp14", 3, 16, num_blocks=2)
    fired = set()
    for name, module in model.named_modules():
        if name and not list(module.children()):
            module.register_forward_hook(lambda *_, name=name: fired.add(name))
    model(torch.randn(2, 16, 42))
    # (the parameter-free band transforms are called through analyze() and synthesize())
    leaves = {name for name, module in model.named_modules()
              if name and not list(module.children()) and not name.endswith("band_split")}
    assert leaves - fired == set()


def test_ablation_switches() -> None:
    """One branch alone is decoded (and trains); the frequency stack can be shorter."""
    x = torch.randn(2, 16, 42)
    temporal_only = small_motionrefinenet("lsp14", 3, 16, use_frequency_branch=False)
    assert temporal_only.frequency_branch is None
    assert_every_parameter_has_gradient(temporal_only, x)
    frequency_only = small_motionrefinenet("lsp14", 3, 16, use_temporal_branch=False)
    assert frequency_only.temporal_branch is None
    assert_every_parameter_has_gradient(frequency_only, x)
    with pytest.raises(ValueError, match="at least one"):
        small_motionrefinenet("lsp14", 3, 16, use_temporal_branch=False,
                              use_frequency_branch=False)
    short = small_motionrefinenet("lsp14", 3, 16, num_blocks=3, freq_num_blocks=1)
    assert len(short.temporal_branch) == 3 and len(short.frequency_branch) == 1


@pytest.mark.parametrize("skeleton", SKELETONS)
def test_untrained_residual_model_is_identity(skeleton: str) -> None:
    model = small_motionrefinenet(skeleton, 3, 16, residual=True)
    x = torch.randn(3, 16, get_skeleton(skeleton).num_joints * 3)
    assert torch.equal(model(x), x)


# ----------------------------------------------------------------------------------------------
# Devices
# ----------------------------------------------------------------------------------------------

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("freq_transform", ("fft", "haar"))
def test_cuda_matches_cpu(freq_transform: str) -> None:
    torch.manual_seed(0)
    model = small_motionrefinenet("lsp14", 3, 32, residual=False, num_blocks=2,
                                  freq_transform=freq_transform).eval()
    x = torch.randn(4, 32, 42)
    expected = model(x)
    model_cuda = model.to("cuda")
    result = model_cuda(x.to("cuda"))
    result.square().mean().backward()
    torch.testing.assert_close(result.cpu(), expected, atol=1e-3, rtol=1e-3)
    assert all(parameter.grad.is_cuda for parameter in model_cuda.parameters())
    smoothnet = SmoothNet(32, hidden_size=64, res_hidden_size=32).to("cuda")
    assert smoothnet(x.to("cuda")).shape == x.shape
