"""The motion gate on real footage: the plaza's walkers always get through, a still picture is detected
only once per max_skip, and a gate that is off lets every frame through."""

from __future__ import annotations

import av
import numpy as np

from vision.scene.motion import MotionGate, MotionGateConfig

from .conftest import SAMPLE

CROSSING = np.array(
    [[0.0, 0.33], [0.55, 0.33], [0.95, 0.25], [1.0, 0.45], [1.0, 0.85], [0.55, 0.62], [0.0, 0.5]]
)
ON = MotionGateConfig(enabled=True, max_skip=1.0)


def frames(count: int, step: int = 2) -> list[tuple[float, np.ndarray]]:
    """``count`` frames of the sample at 5 fps (every ``step``-th of its 10), with their pts."""
    out = []
    with av.open(str(SAMPLE)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % step == 0:
                out.append((float(frame.time), frame.to_ndarray(format="bgr24")))
            if len(out) == count:
                break
    return out


def test_people_walking_in_the_zone_always_get_through() -> None:
    gate = MotionGate(ON, [CROSSING])
    clip = frames(50)
    assert [pts for pts, image in clip if not gate.due(image, pts)] == []
    assert gate.skipped == 0


def test_a_still_picture_is_detected_once_per_max_skip() -> None:
    pts0, image = frames(1)[0]
    gate = MotionGate(ON, [CROSSING])
    times = [pts0 + 0.2 * i for i in range(16)]  # 3 s of the same real frame at 5 fps
    detected = [t for t in times if gate.due(image.copy(), t)]
    assert np.allclose(detected, [pts0, pts0 + 1.0, pts0 + 2.0, pts0 + 3.0])
    assert gate.skipped == len(times) - len(detected)
    # a new zone is compared from its next frame on: that frame is detected
    gate.reconfigure([CROSSING * 0.5])
    assert gate.due(image, times[-1] + 0.2)


def test_a_gate_that_is_off_lets_every_frame_through() -> None:
    pts0, image = frames(1)[0]
    gate = MotionGate(MotionGateConfig(), [CROSSING])
    assert all(gate.due(image, pts0 + 0.2 * i) for i in range(10)) and gate.skipped == 0
