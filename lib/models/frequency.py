"""Band transforms that split a signal along its last axis into low, mid and high bands."""

from __future__ import annotations

import math

import torch
from torch import nn

NUM_BANDS = 3  # low, mid, high


def _check_length(x: torch.Tensor, length: int) -> None:
    if x.dim() < 1 or x.shape[-1] != length:
        raise ValueError(f"expected last axis of length {length}, got shape {tuple(x.shape)}")


class FFTBandSplit(nn.Module):
    """Split by real FFT: each frequency bin goes to exactly one band.

    ``forward`` returns the three band signals; ``analyze`` / ``synthesize`` give and invert
    each band's real coefficients (the frequency branch filters those).

    A bin k has normalised frequency f = k / length (0 to 0.5). Bins with f < band_edges[0]
    form the low band, f < band_edges[1] the mid band, the rest the high band. Each band is
    brought back with the inverse real FFT, so the three bands sum to the input.

    Args:
        length: L, size of the last axis.
        band_edges: (low/mid edge, mid/high edge) in cycles per sample, 0 < e0 < e1 <= 0.5.

    Shape:
        x: (..., L) -> (..., 3, L)
    """

    def __init__(self, length: int, band_edges: tuple[float, float] = (0.125, 0.25)) -> None:
        super().__init__()
        low_edge, high_edge = band_edges
        if length < 2:
            raise ValueError(f"FFTBandSplit needs length >= 2, got {length}")
        if not 0.0 < low_edge < high_edge <= 0.5:
            raise ValueError(f"band_edges must satisfy 0 < e0 < e1 <= 0.5, got {band_edges}")
        self.length = length
        frequency = torch.arange(length // 2 + 1) / length  # (K,)
        low = frequency < low_edge
        mid = (frequency >= low_edge) & (frequency < high_edge)
        high = frequency >= high_edge
        self.register_buffer("band_masks", torch.stack([low, mid, high]).float())  # (3, K)
        # The bands are contiguous runs of bins: low = [0, k1), mid = [k1, k2), high the rest.
        self.band_bins = (int(low.sum()), int(low.sum() + mid.sum()))
        # Real coefficient layout: the spectrum viewed as (K, 2) real numbers, flattened; the
        # imaginary parts of the DC bin and (for even L) of the Nyquist bin are always zero and
        # are left out, so the bands hold L real numbers in all, like an orthogonal transform.
        always_zero = {1} | ({2 * (length // 2) + 1} if length % 2 == 0 else set())
        edges = [0, 2 * self.band_bins[0], 2 * self.band_bins[1], 2 * (length // 2 + 1)]
        for band in range(NUM_BANDS):
            kept = [i for i in range(edges[band], edges[band + 1]) if i not in always_zero]
            self.register_buffer(f"_band_index_{band}", torch.tensor(kept), persistent=False)
        self.band_sizes = tuple(len(getattr(self, f"_band_index_{b}")) for b in range(NUM_BANDS))

    def analyze(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Real coefficients of each band: the real and imaginary parts of its bins.

        Shape:
            x: (..., L) -> [(..., n_low), (..., n_mid), (..., n_high)], n_low + n_mid + n_high = L
        """
        _check_length(x, self.length)
        coefficients = torch.view_as_real(torch.fft.rfft(x, dim=-1)).flatten(-2)  # (..., 2K)
        return [coefficients.index_select(-1, self._indices(band)) for band in range(NUM_BANDS)]

    def synthesize(self, bands: list[torch.Tensor]) -> torch.Tensor:
        """Invert :meth:`analyze`. Shape: [(..., n_b)] -> (..., L)."""
        parts = torch.cat(bands, dim=-1)  # (..., L)
        index = torch.cat([self._indices(band) for band in range(NUM_BANDS)])
        flat = parts.new_zeros((*parts.shape[:-1], 2 * (self.length // 2 + 1)))
        flat = flat.index_copy(-1, index, parts)  # (..., 2K)
        spectrum = torch.view_as_complex(flat.unflatten(-1, (-1, 2)).contiguous())
        return torch.fft.irfft(spectrum, n=self.length, dim=-1)

    def _indices(self, band: int) -> torch.Tensor:
        return getattr(self, f"_band_index_{band}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the low, mid and high bands of ``x``; they sum to ``x``.

        Shape:
            x: (..., L) -> (..., 3, L)
        """
        return self.band_major(x).movedim(0, -2)

    def band_major(self, x: torch.Tensor) -> torch.Tensor:
        """The bands stacked first, contiguous, as batched products want them.

        Shape:
            x: (..., L) -> (3, ..., L)
        """
        _check_length(x, self.length)
        low_bins, mid_bins = self.band_bins
        spectrum = torch.fft.rfft(x, n=self.length, dim=-1)  # (..., K), complex
        # irfft zero-fills missing bins, and the split is linear: two inverse transforms of
        # truncated spectra give low and low + mid, and the high band is what remains.
        low = torch.fft.irfft(spectrum[..., :low_bins], n=self.length, dim=-1)
        low_mid = torch.fft.irfft(spectrum[..., :mid_bins], n=self.length, dim=-1)
        return torch.stack([low, low_mid - low, x - low_mid])


def _haar_analysis(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One orthonormal Haar level: (approximation, detail) of consecutive sample pairs.

    Shape:
        x: (..., 2N) -> ((..., N), (..., N))
    """
    pairs = x.unflatten(-1, (-1, 2))  # (..., N, 2)
    first, second = pairs[..., 0], pairs[..., 1]
    return (first + second) / math.sqrt(2.0), (first - second) / math.sqrt(2.0)


def _haar_synthesis(approx: torch.Tensor, detail: torch.Tensor) -> torch.Tensor:
    """Invert :func:`_haar_analysis`.

    Shape:
        approx, detail: (..., N) -> (..., 2N)
    """
    first = (approx + detail) / math.sqrt(2.0)
    second = (approx - detail) / math.sqrt(2.0)
    return torch.stack([first, second], dim=-1).flatten(-2)  # interleave the pairs


class HaarBandSplit(nn.Module):
    """Split by a two-level orthonormal Haar wavelet.

    Level 1 splits the signal into approximation a1 and detail d1; level 2 splits a1 into a2
    and d2. The low band is reconstructed from a2 alone, the mid band from d2 alone and the high
    band from d1 alone; the transform is linear and orthonormal, so the bands sum to the input.

    Args:
        length: L, size of the last axis; must be divisible by 4.

    Shape:
        x: (..., L) -> (..., 3, L)
    """

    def __init__(self, length: int) -> None:
        super().__init__()
        if length < 4 or length % 4 != 0:
            raise ValueError(f"HaarBandSplit needs a length divisible by 4 (two levels of "
                             f"halving), got {length}")
        self.length = length
        self.band_sizes = (length // 4, length // 4, length // 2)

    def analyze(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Coefficients of a two-level db1 transform: approximation a2, details d2 and d1.

        Shape:
            x: (..., L) -> [(..., L/4), (..., L/4), (..., L/2)]
        """
        _check_length(x, self.length)
        approx1, detail1 = _haar_analysis(x)
        approx2, detail2 = _haar_analysis(approx1)
        return [approx2, detail2, detail1]

    def synthesize(self, bands: list[torch.Tensor]) -> torch.Tensor:
        """Invert :meth:`analyze`. Shape: [(..., L/4), (..., L/4), (..., L/2)] -> (..., L)."""
        approx2, detail2, detail1 = bands
        return _haar_synthesis(_haar_synthesis(approx2, detail2), detail1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the low, mid and high bands of ``x``; they sum to ``x``.

        Shape:
            x: (..., L) -> (..., 3, L)
        """
        return self.band_major(x).movedim(0, -2)

    def band_major(self, x: torch.Tensor) -> torch.Tensor:
        """The bands stacked first, contiguous. Shape: (..., L) -> (3, ..., L)."""
        _check_length(x, self.length)
        approx1, detail1 = _haar_analysis(x)  # (..., L/2) each
        approx2, detail2 = _haar_analysis(approx1)  # (..., L/4) each
        no_detail1 = torch.zeros_like(detail1)
        no_level2 = torch.zeros_like(approx2)
        low = _haar_synthesis(_haar_synthesis(approx2, no_level2), no_detail1)
        mid = _haar_synthesis(_haar_synthesis(no_level2, detail2), no_detail1)
        high = _haar_synthesis(torch.zeros_like(approx1), detail1)
        return torch.stack([low, mid, high])


BAND_SPLITS: dict[str, type[nn.Module]] = {"fft": FFTBandSplit, "haar": HaarBandSplit}


def build_band_split(name: str, length: int) -> nn.Module:
    """Build the band transform called ``name`` for signals of the given length.

    Raises:
        KeyError: for an unknown name, listing the valid ones.
    """
    if name not in BAND_SPLITS:
        raise KeyError(f"unknown band split {name!r}; valid: {sorted(BAND_SPLITS)}")
    return BAND_SPLITS[name](length)
