"""Online refinement: exact offline equivalence at full latency, causality below it."""

import numpy as np
import pytest

from lib.api import Refiner
from lib.streaming import StreamingRefiner
from tests.refine_fixtures import single_thread, tiny_checkpoint  # noqa: F401


@pytest.fixture(scope="module")
def refiner(tmp_path_factory):
    path = tiny_checkpoint(str(tmp_path_factory.mktemp("ckpt") / "tiny.pth"), seed=3)
    return Refiner.from_checkpoint(path)


def run_stream(stream: StreamingRefiner, poses: np.ndarray) -> tuple[list, list]:
    pushed = [stream.push(frame) for frame in poses]
    return pushed, stream.flush()


@pytest.mark.parametrize("frames", [30, 8, 5])
def test_full_latency_equals_offline(refiner, rng, frames):
    poses = rng.normal(0, 0.3, (frames, 21, 3)).astype(np.float32)
    offline = refiner.refine(poses)
    stream = StreamingRefiner(refiner)
    assert stream.latency == refiner.window - 1 == 7
    pushed, rest = run_stream(stream, poses)
    assert all(p is None for p in pushed[:7])
    online = np.stack([p for p in pushed if p is not None] + rest)
    np.testing.assert_allclose(online, offline, atol=1e-5)


@pytest.mark.parametrize("latency", [0, 3])
def test_smaller_latency_is_causal(refiner, rng, latency):
    poses = rng.normal(0, 0.3, (16, 21, 3)).astype(np.float32)
    changed = poses.copy()
    changed[12:] += 1.0
    first, rest = run_stream(StreamingRefiner(refiner, latency), poses)
    second, _ = run_stream(StreamingRefiner(refiner, latency), changed)
    assert sum(p is None for p in first) == latency and len(rest) == latency
    # The frame returned at push t is frame t - latency and sees no frame after t.
    for t in range(12):
        if first[t] is not None:
            np.testing.assert_array_equal(first[t], second[t])
    assert not np.allclose(first[14], second[14])


def test_stream_can_be_reused_and_checks_frames(refiner, rng):
    stream = StreamingRefiner(refiner, 2)
    poses = rng.normal(0, 0.3, (10, 21, 3)).astype(np.float32)
    once = run_stream(stream, poses)
    again = run_stream(stream, poses)
    np.testing.assert_array_equal(np.stack(once[1]), np.stack(again[1]))
    with pytest.raises(ValueError, match="expects 21 joints"):
        stream.push(np.zeros((17, 3)))
    with pytest.raises(ValueError, match=r"latency must be in \[0, 7\]"):
        StreamingRefiner(refiner, 8)


def test_filter_streams_window_by_window(rng):
    refiner = Refiner.from_filter("gaussian", sigma=2.0, window=9, stream_window=16)
    poses = rng.normal(size=(20, 3, 2))
    pushed, rest = run_stream(StreamingRefiner(refiner, 4), poses)
    assert len([p for p in pushed if p is not None] + rest) == 20
