"""SmoothNet's published results, as data, for the tables of tools/make_tables.py.

Source: the result tables of SmoothNet's README, github.com/cure-lab/SmoothNet, commit c03e93e
("3D Keypoint Results", "2D Keypoint Results", "SMPL Results"): input / output MPJPE and
Accel of the released pretrained models (the README's default window is 32 frames). Units: mm
and mm/frame^2 for 3D and smpl, pixels for 2D. Only the numbers printed there are listed;
the README has no jhmdb (PCK) or window-sweep numbers, so none are given for those.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = "SmoothNet README (github.com/cure-lab/SmoothNet, commit c03e93e)"


@dataclass(frozen=True)
class PublishedResult:
    """One published row: the estimator's input error and SmoothNet's output error.

    Attributes:
        mpjpe_in, mpjpe_out: MPJPE of the estimator and after SmoothNet.
        accel_in, accel_out: Accel error of the estimator and after SmoothNet.
        trained_on: the setting the evaluated SmoothNet checkpoint was trained on.
    """

    mpjpe_in: float
    mpjpe_out: float
    accel_in: float
    accel_out: float
    trained_on: str


def _row(mpjpe: tuple[float, float], accel: tuple[float, float],
         trained_on: str) -> PublishedResult:
    return PublishedResult(mpjpe[0], mpjpe[1], accel[0], accel[1], trained_on)


_AIST, _H36M, _PW3D = "aist_vibe_3D", "h36m_fcn_3D", "pw3d_spin_3D"

# (dataset, estimator, representation) -> published row.
PUBLISHED: dict[tuple[str, str, str], PublishedResult] = {
    ("aist", "spin", "3D"): _row((107.17, 95.21), (33.19, 4.17), _AIST),
    ("aist", "tcmr", "3D"): _row((106.72, 105.51), (6.4, 4.24), _AIST),
    ("aist", "vibe", "3D"): _row((106.90, 97.47), (31.64, 4.15), _AIST),
    ("h36m", "fcn", "3D"): _row((54.55, 52.72), (19.17, 1.03), _H36M),
    ("h36m", "rle", "3D"): _row((48.87, 48.27), (7.75, 0.90), _H36M),
    ("h36m", "tcmr", "3D"): _row((73.57, 73.89), (3.77, 2.79), _H36M),
    ("h36m", "vibe", "3D"): _row((78.10, 77.23), (15.81, 2.86), _H36M),
    ("h36m", "videoposet27", "3D"): _row((50.13, 50.04), (3.53, 0.88), _H36M),
    ("h36m", "videoposet81", "3D"): _row((48.97, 48.89), (3.06, 0.87), _H36M),
    ("h36m", "videoposet243", "3D"): _row((48.11, 48.05), (2.82, 0.87), _H36M),
    ("mpiinf3dhp", "spin", "3D"): _row((100.74, 92.89), (28.54, 6.54), _PW3D),
    ("mpiinf3dhp", "tcmr", "3D"): _row((92.83, 88.93), (7.92, 6.49), _PW3D),
    ("mpiinf3dhp", "vibe", "3D"): _row((92.39, 87.57), (22.37, 6.5), _PW3D),
    ("mupots", "tposenet", "3D"): _row((103.33, 100.78), (12.7, 7.23), _AIST),
    ("mupots", "tposenetrefinenet", "3D"): _row((93.97, 91.78), (9.53, 7.21), _AIST),
    # The README also lists 90.32 -> 86.39 / 32.71 -> 6.30 for EFT "(additional training)".
    ("pw3d", "eft", "3D"): _row((90.32, 88.40), (32.71, 6.07), _PW3D),
    ("pw3d", "pare", "3D"): _row((78.91, 78.11), (25.64, 5.91), _PW3D),
    ("pw3d", "spin", "3D"): _row((96.85, 95.84), (34.55, 6.17), _PW3D),
    ("pw3d", "tcmr", "3D"): _row((86.46, 86.48), (6.76, 5.95), _H36M),
    ("pw3d", "vibe", "3D"): _row((82.97, 81.49), (23.16, 5.98), _H36M),
    ("h36m", "cpn", "2D"): _row((6.67, 6.45), (2.91, 0.14), _H36M),
    ("h36m", "hourglass", "2D"): _row((9.42, 9.25), (1.54, 0.15), _H36M),
    ("h36m", "hrnet", "2D"): _row((4.59, 4.54), (1.01, 0.13), _H36M),
    ("h36m", "rle", "2D"): _row((5.14, 5.11), (0.9, 0.13), _H36M),
    ("aist", "spin", "smpl"): _row((107.72, 103.00), (33.21, 5.72), _AIST),
    ("aist", "tcmr", "smpl"): _row((106.95, 106.39), (6.47, 4.68), _H36M),
    ("aist", "vibe", "smpl"): _row((107.41, 102.06), (31.65, 5.95), _H36M),
    ("pw3d", "eft", "smpl"): _row((91.60, 89.57), (33.38, 7.89), _PW3D),
    ("pw3d", "pare", "smpl"): _row((79.93, 78.68), (26.45, 6.31), _PW3D),
    ("pw3d", "spin", "smpl"): _row((99.28, 97.81), (34.95, 7.40), _PW3D),
    ("pw3d", "tcmr", "smpl"): _row((88.46, 88.37), (7.12, 6.52), _H36M),
    ("pw3d", "vibe", "smpl"): _row((84.27, 83.14), (23.59, 7.24), _H36M),
}

# Spellings of estimators that name the same published row (VideoPose3D, TposeNet+RefineNet).
_ALIASES = {"tposenet_refinenet": "tposenetrefinenet"}


def published_result(dataset: str, estimator: str, rep: str) -> PublishedResult | None:
    """SmoothNet's published row for a setting, or None when the README has none."""
    return PUBLISHED.get((dataset, _ALIASES.get(estimator, estimator), rep))
