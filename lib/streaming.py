"""Online refinement: frames in one at a time, refined frames out after a fixed latency."""

from __future__ import annotations

from collections import deque

import numpy as np

from lib.api import Refiner


class StreamingRefiner:
    """Refines a live stream of poses with a window refiner and a latency of L frames.

    Every pushed frame t >= W - 1 completes the window of frames t - W + 1 .. t, which is
    refined once and added to the running sum of each frame it covers. Frame f = t - L is then
    returned as the average of all windows computed so far that cover it: the windows ending
    at f .. f + L. With L = W - 1 these are all the windows that cover f, so the output equals
    offline refinement with step 1 (:meth:`Refiner.refine`); smaller L averages fewer, causal
    windows and answers sooner.

    Start and end of a stream: with L < W - 1, frames due before the first full window
    (t < W - 1) are taken from a window padded at its start with copies of frame 0, at position
    W - 1 - L. ``flush()`` returns the last frames from the windows seen so far; a stream shorter
    than W is refined at flush from one window padded at its end, as offline refinement does.

    Args:
        refiner: anything built by ``Refiner.from_*``; its ``window`` is W.
        latency: L, frames between pushing a frame and getting it back, 0 <= L <= W - 1;
            default W - 1 (exact offline equivalence).

    Shape:
        push: frame (J, D) -> (J, D) float32 or None; flush: list of (J, D).
    """

    def __init__(self, refiner: Refiner, latency: int | None = None) -> None:
        window = refiner.window
        latency = window - 1 if latency is None else int(latency)
        if not 0 <= latency <= window - 1:
            raise ValueError(f"latency must be in [0, {window - 1}] for a window of {window} "
                             f"frames, got {latency}")
        self.refiner = refiner
        self.window = window
        self.latency = latency
        self.reset()

    def reset(self) -> None:
        """Forget the stream; the next push starts a new sequence."""
        self._recent: deque[np.ndarray] = deque(maxlen=self.window)
        self._first: np.ndarray | None = None
        self._pushed = 0
        self._sums: deque[np.ndarray] = deque()  # pending frames, oldest first
        self._hits: deque[int] = deque()

    def _check(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        expected = self._first.shape if self._first is not None else None
        if frame.ndim != 2 or (expected is not None and frame.shape != expected):
            raise ValueError(f"push: expected one frame of shape {expected or '(J, D)'}, got "
                             f"{frame.shape}")
        return self.refiner.check(frame[None], "push: frame")[0].astype(np.float32)

    def _add_window(self) -> None:
        """Refine the window that ends at the newest frame and add it to the pending sums."""
        refined = self.refiner.refine_windows(np.stack(self._recent)[None])[0]  # (W, J, D)
        pending = len(self._sums)
        for index, value in enumerate(refined[self.window - pending:]):
            self._sums[index] += value
            self._hits[index] += 1

    def _start_value(self) -> np.ndarray:
        """Before the first full window: a window padded at its start with frame 0."""
        frames = list(self._recent)
        padded = [self._first] * (self.window - len(frames)) + frames
        refined = self.refiner.refine_windows(np.stack(padded)[None])[0]
        return refined[self.window - 1 - self.latency]

    def push(self, frame: np.ndarray) -> np.ndarray | None:
        """Add the next frame; return the refined frame ``latency`` frames back, or None.

        Shape:
            frame (J, D) -> (J, D) float32, or None while fewer than L + 1 frames came in.
        """
        frame = self._check(frame)
        if self._first is None:
            self._first = frame
        self._recent.append(frame)
        self._sums.append(np.zeros_like(frame))
        self._hits.append(0)
        self._pushed += 1
        if self._pushed >= self.window:
            self._add_window()
        if self._pushed <= self.latency:
            return None
        value = self._sums[0] / self._hits[0] if self._hits[0] else self._start_value()
        self._sums.popleft()
        self._hits.popleft()
        return value

    def flush(self) -> list[np.ndarray]:
        """End the stream: the refined frames not yet returned, oldest first; then reset.

        Shape:
            returns a list of (J, D) float32, min(L, frames pushed) entries.
        """
        if not self._hits:
            self.reset()
            return []
        if not all(self._hits):
            # No full window ever came: one window padded at its end, as offline.
            frames = list(self._recent)
            padded = np.stack(frames + [frames[-1]] * (self.window - len(frames)))
            refined = self.refiner.refine_windows(padded[None])[0]
            offset = self._pushed - len(self._hits)
            values = [refined[offset + index] for index in range(len(self._hits))]
        else:
            values = [total / hits for total, hits in zip(self._sums, self._hits)]
        self.reset()
        return values
