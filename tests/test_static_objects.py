"""The static-object model's cheaper forms of its per-look steps give exactly what the plain ones gave."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from vision.scene import static_objects
from vision.scene.static_blobs import _edges, _labelled, connected_components
from vision.scene.static_objects import StaticObjects, StaticObjectsConfig, median


def test_the_gains_median_is_np_medians() -> None:
    """The gain's median (a partition in place) is np.median's value to the bit: odd and even counts, ties,
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
    outside, or are empty (None without boxes)."""
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
        under = model._under(cover, shape)  # None: no boxes, nothing under
        assert (under is None) == (len(cover) == 0)
        np.testing.assert_array_equal(np.zeros(shape, bool) if under is None else under, expected)
        assert model._under(None, shape) is None


def test_a_looks_bookkeeping_on_its_changed_pixels_alone_is_the_one_over_every_pixel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With few changed pixels a look works out the timers, arrivals and seen-alone flags on theirs alone
    (gathered), resetting only the last look's changed pixels' (where it was few too: the arrays rest
    elsewhere); with many, on every pixel in place. Both give the same arrays and blobs, look by look:
    a bag set down and left, a passer-by under a cover box, light changes over the whole view, dark
    time, looks 1 s and 2 s apart, and the always-few model restored from its snapshot midway (other
    arrays: reset whole). Their snapshots too: the always-few model's busy pixels are looked for among
    the last look's changed ones, the other's over every pixel."""
    rng = np.random.default_rng(16)
    ground = cv2.GaussianBlur(rng.integers(60, 200, (120, 160, 3), dtype=np.uint8), (7, 7), 0)
    models = {few: StaticObjects(StaticObjectsConfig(min_static=2.0)) for few in (0.0, 2.0)}  # never, always
    pts = unseen = 0.0
    blobs = 0
    for look in range(40):
        frame = ground.copy()
        if look >= 5:
            frame[50:62, 40:60] = 230  # a bag, set down and left
        x = 4 * look % 140
        frame[20:70, x : x + 16] = 20  # a passer-by, boxed
        if look % 13 in (7, 8):
            frame = (frame * 0.6).astype(np.uint8)  # the light changes over the whole view
        cover = np.array([[x, 20, x + 16, 70]], np.float32)
        pts += 1.0 + look % 2
        unseen += 3.0 if look == 20 else 0.0
        found = {}
        if look == 30:
            assert models[2.0].load_arrays(models[2.0].arrays())
        for few, model in models.items():
            monkeypatch.setattr(static_objects, "FEW", few)
            found[few] = model.update(frame, pts, None, cover, unseen)
        a, b = models.values()
        for name in ("fast", "slow", "timer", "arrived", "seen"):
            np.testing.assert_array_equal(
                getattr(a, name), getattr(b, name), err_msg=f"{name} at look {look}"
            )
        np.testing.assert_array_equal(found[0.0].xyxy, found[2.0].xyxy)
        np.testing.assert_array_equal(found[0.0].static_seconds, found[2.0].static_seconds)
        over_all, among_left = a.arrays(), b.arrays()  # busy pixels found over every pixel / the look's
        assert over_all.keys() == among_left.keys()
        for name, array in over_all.items():
            assert among_left[name].dtype == array.dtype, name
            np.testing.assert_array_equal(among_left[name], array, err_msg=f"snapshot {name} at look {look}")
        blobs += len(found[0.0])
    assert blobs > 0  # the bag, timed to a blob between the light changes


def test_the_static_masks_morphology_and_labels_over_its_box_are_the_whole_masks() -> None:
    """The static pixels' opening, closing, thin strips' timers and labels, worked out over the box of
    their 3x3 squares alone, are those of the whole mask: blobs, specks and strips anywhere (at the edges
    too), at odd and even rows and columns, few or many, with no square at all."""
    rng = np.random.default_rng(61)
    for _ in range(300):
        shape = (int(rng.integers(8, 90)), int(rng.integers(8, 90)))
        static = np.zeros(shape, bool)
        for _ in range(int(rng.integers(1, 6))):
            y, x = int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))
            static[y : y + int(rng.integers(1, 12)), x : x + int(rng.integers(1, 12))] = True
        static |= rng.random(shape) < rng.choice([0.0, 0.01, 0.2])  # specks
        timer = np.where(static, rng.uniform(4, 60, shape), 0).astype(np.float32)
        expected = timer.copy()
        square = np.ones((3, 3), np.uint8)  # the opening: nothing static beyond the frame's edge
        core = cv2.erode(static.view(np.uint8), square, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        m = cv2.morphologyEx(cv2.dilate(core, square), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        expected[static & (m == 0)] = 0.0
        n, labels, stats = connected_components(m)
        got_n, got_labels, got_stats, box = _labelled(static, timer)
        assert got_n == n
        np.testing.assert_array_equal(got_stats, stats)
        np.testing.assert_array_equal(timer, expected)
        if n > 1:  # the labels over the box: every labelled pixel in it, and the ghost check's crops
            np.testing.assert_array_equal(got_labels, labels[box])
            assert np.count_nonzero(got_labels) == np.count_nonzero(labels)
            top, left = box[0].start, box[1].start
            bottom, right = top + got_labels.shape[0], left + got_labels.shape[1]
            for x, y, w, h, _ in stats[1:].tolist():  # 2 pixels around the blob's box, within the mask
                assert max(0, y - 2) >= top and min(shape[0], y + h + 2) <= bottom
                assert max(0, x - 2) >= left and min(shape[1], x + w + 2) <= right


def test_a_thin_strip_along_the_frames_edge_is_no_blob_as_anywhere_else() -> None:
    """The opening takes nothing static beyond the frame's edge: a strip 2 pixels thick along an edge
    (a moved kerb, the frame's border shimmering) is too thin for a blob and its clocks start again, as
    one inside the frame; an object 3 pixels thick or more keeps its pixels up to the edge."""
    for edge in ("top", "bottom", "left", "right"):
        static = np.zeros((40, 60), bool)
        strip = {"top": np.s_[:2, 10:30], "bottom": np.s_[-2:, 10:30], "left": np.s_[5:25, :2]}
        static[strip.get(edge, np.s_[5:25, -2:])] = True
        static[20:30, 0:6] |= edge == "top"  # an object at the left edge beside the top's strip
        timer = np.where(static, np.float32(30), np.float32(0))
        n, _, stats, _ = _labelled(static, timer)
        if edge == "top":
            assert n == 2 and stats[1].tolist() == [0, 20, 6, 10, 60], stats
            assert not timer[:2].any() and (timer[20:30, 0:6] == 30).all()
        else:
            assert n == 1 and not timer.any(), (edge, stats)


def test_the_ghost_checks_edge_strength_at_the_ring_is_the_whole_crops_mean_there() -> None:
    """The ghost check's mean edge strength, worked out at the ring's pixels alone, is the mean at the
    ring of the whole crop's strengths (np.mean's value to the bit): crops of a frame and of a background
    times a gain, rings of blobs of any size, at the edges of the crop too."""
    rng = np.random.default_rng(124)
    for _ in range(300):
        shape = (int(rng.integers(3, 60)), int(rng.integers(3, 60)))
        crop = (rng.uniform(0, 255, shape) * rng.uniform(0.5, 1.5)).astype(np.float32)
        blob = np.zeros(shape, np.uint8)
        y, x = int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))
        blob[y : y + int(rng.integers(1, 40)), x : x + int(rng.integers(1, 40))] = 1
        ring = cv2.morphologyEx(blob, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
        if not ring.any():
            continue
        whole = np.abs(cv2.Sobel(crop, cv2.CV_32F, 1, 0, ksize=3)) + np.abs(
            cv2.Sobel(crop, cv2.CV_32F, 0, 1, ksize=3)
        )
        expected = whole[ring].mean()
        got = _edges(crop, ring)
        assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()
