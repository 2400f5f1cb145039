"""The static-object model's cheaper forms of its per-look steps give exactly what the plain ones gave."""

from __future__ import annotations

import math

import numpy as np

from vision.scene.static_objects import StaticObjects, StaticObjectsConfig, median


def test_the_gains_median_is_np_medians() -> None:
    """The gain's median (a sort in place) is np.median's value to the bit: odd and even counts, ties,
    one value, ratios around 1 as the gain sees them, and float64 too."""
    rng = np.random.default_rng(16)
    arrays = [np.array([1.5], np.float32), np.array([2.0, 1.0], np.float32), np.ones(10, np.float32)]
    for size in (3, 4, 1001, 1002, 18036):
        arrays.append((1 + 0.05 * rng.standard_normal(size)).astype(np.float32))
        arrays.append(rng.integers(0, 5, size).astype(np.float32) / np.float32(3))  # many ties
    arrays.append(rng.random(999))
    for values in arrays:
        expected = float(np.median(values))
        assert median(values.copy()) == expected, (len(values), values.dtype)


def test_the_pixels_under_the_cover_boxes_are_each_boxs_rectangle() -> None:
    """Under the cover boxes: each box's floor/ceil rectangle in analysis pixels, clipped to the model's
    box, however the boxes repeat (the frames a look covers show the same boxes), lie partly or wholly
    outside, or are empty."""
    rng = np.random.default_rng(7)
    model = StaticObjects(StaticObjectsConfig())
    for _ in range(300):
        model.step = (float(rng.uniform(0.3, 4.0)), float(rng.uniform(0.3, 4.0)))
        model.origin = (int(rng.integers(0, 200)), int(rng.integers(0, 200)))
        shape = (int(rng.integers(1, 120)), int(rng.integers(1, 120)))
        cover = rng.uniform(-100, 700, (int(rng.integers(0, 12)), 4)).astype(np.float32)
        cover = np.concatenate([cover, cover[: len(cover) // 2]])
        expected = np.zeros(shape, bool)
        (sx, sy), (x0, y0) = model.step, model.origin
        for bx0, by0, bx1, by1 in cover.astype(np.float64):
            c0, r0 = max(0, math.floor((bx0 - x0) / sx)), max(0, math.floor((by0 - y0) / sy))
            c1, r1 = min(shape[1], math.ceil((bx1 - x0) / sx)), min(shape[0], math.ceil((by1 - y0) / sy))
            if c1 > c0 and r1 > r0:
                expected[r0:r1, c0:c1] = True
        np.testing.assert_array_equal(model._under(cover, shape), expected)
        assert not model._under(None, shape).any()
