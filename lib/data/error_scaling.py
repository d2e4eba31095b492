"""Weaker estimator errors on some training windows, an augmentation (``TRAIN.AUGMENT_WEAK``).

A network trained only on errors of one size learns to distrust its input as a whole: the
demo's network, given the ground truth itself as input, returned poses 28 mm (training motion)
to 44 mm (unseen motion) away from it. Shrinking the simulated error of a share of the
windows, by a factor drawn log-uniformly between a floor and 1, shows it inputs from nearly
exact to as bad as the error model makes them, so that it learns to keep what is already right.
The factor multiplies the whole error (estimate - ground truth) of a window, whichever error
model drew it; positions only (2D and 3D).
"""

from __future__ import annotations

import numpy as np


def shrink_errors(estimates: np.ndarray, targets: np.ndarray, rng: np.random.Generator,
                  share: float, floor: float) -> np.ndarray:
    """Scale the error of a random share of the windows by log-uniform factors in [floor, 1].

    Args:
        estimates: simulated estimates of the windows.
        targets: their ground truth.
        rng: draws which windows shrink and by how much (nothing is drawn when share is 0).
        share: chance that a window's error shrinks, in [0, 1].
        floor: smallest factor, in (0, 1].

    Returns:
        A copy of the estimates, the chosen windows' at ``target + factor * error``.

    Shape:
        estimates, targets (B, ...) -> (B, ...), the dtype of ``estimates``.
    """
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], got {share}")
    if not 0 < floor <= 1:
        raise ValueError(f"floor must be in (0, 1], got {floor}")
    if estimates.shape != targets.shape:
        raise ValueError(f"estimates {estimates.shape} and targets {targets.shape} differ in shape")
    if share == 0 or len(estimates) == 0:
        return estimates
    chosen = rng.random(len(estimates)) < share
    factors = (floor ** rng.random(len(estimates)))[chosen]
    factors = factors.reshape((-1,) + (1,) * (estimates.ndim - 1))
    shrunk = np.array(estimates, copy=True)
    shrunk[chosen] = targets[chosen] + factors * (estimates[chosen] - targets[chosen])
    return shrunk
