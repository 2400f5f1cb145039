"""The static-object model's cheaper forms of its per-look steps give exactly what the plain ones gave."""

from __future__ import annotations

import math

import cv2
import numpy as np

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


class NumpyLook(StaticObjects):
    """The look's per-pixel work as numpy passes over every pixel, in place: the code the compiled
    kernels (vision/scene/static_kernels.py) replaced, kept here as what they must give."""

    def _gain(self, grey: np.ndarray, threshold: np.float32) -> float:
        assert self.fast is not None and self.slow is not None
        grey, fast, slow = (
            a[:: static_objects.GAIN_STEP, :: static_objects.GAIN_STEP] for a in (grey, self.fast, self.slow)
        )
        sample = (cv2.absdiff(grey, fast) < self.cfg.threshold) & (slow > 8)
        if np.count_nonzero(sample) < 0.05 * sample.size:
            return 1.0
        return median(grey[sample] / slow[sample])

    def _look(
        self, grey: np.ndarray, pts: float, dt: float, dark: float, cover: np.ndarray | None
    ) -> tuple[np.ndarray, bool]:
        assert self.fast is not None and self.slow is not None and self.timer is not None
        assert self.arrived is not None and self.seen is not None
        cfg, arrived, seen, timer = self.cfg, self.arrived, self.seen, self.timer
        catch_up = static_objects.CATCH_UP * cfg.fast_seconds
        calm = cv2.absdiff(grey, self.fast) < cfg.threshold
        self.gain = gain = self._gain(grey, np.float32(cfg.threshold))
        expected = self.slow * gain  # a Python float against float32: float32, as numpy casts it
        changed = cv2.absdiff(grey, expected) >= cfg.threshold
        unsure = self.unsure if self.unsure is not None and self.unsure.any() else None
        if unsure is not None:
            changed &= ~unsure | (np.abs(self._blurred(grey) - expected) >= cfg.threshold)
        if dark:
            arrived += dark
        new = np.isnan(arrived) & changed
        arrived[~changed] = np.nan
        seen &= changed
        arrived[new] = pts
        under = self._under(cover, grey.shape)
        fresh = changed & ~seen
        if under is not None and fresh.any() and under.any():
            n, labels = cv2.connectedComponents(changed.view(np.uint8), connectivity=8)
            touched = np.zeros(n, bool)
            touched[labels[under & changed]] = True
            fresh &= ~touched[labels]
        seen |= fresh
        arrived[fresh & (pts - arrived > catch_up)] = pts
        settled = seen & calm
        first = settled & (timer == 0)
        np.add(timer, dt - dark, out=timer, where=settled & ~first)
        timer[first] = np.minimum(pts - arrived[first], catch_up)
        timer[~seen] = 0.0
        step = grey - self.fast
        if dt < cfg.fast_seconds:
            step *= dt / cfg.fast_seconds
        self.fast += step
        lerp = grey / gain - self.slow
        lerp *= min(1.0, dt / cfg.slow_seconds)
        np.copyto(self.slow, self.slow + lerp, where=~changed)
        if unsure is not None:
            self._learn(grey, changed, calm, under, gain, unsure)
        fixtures = timer >= cfg.absorb_after
        self.slow[fixtures] = grey[fixtures] / gain
        timer[fixtures] = 0.0
        self._left = None  # no record of the changed pixels: a snapshot looks over every pixel
        return calm, bool((timer >= cfg.min_static).any())


def test_the_compiled_look_gives_the_numpy_passes_arrays_and_blobs_look_by_look() -> None:
    """The look's kernels give, to the bit, what numpy's passes over every pixel gave: the backgrounds,
    timers, arrivals and seen-alone flags, the blobs and the snapshots, look by look: a bag set down
    and left, a passer-by under a cover box, light changes over the whole view, dark time, looks 1 s
    and 2 s apart, a new scale from the people's size (the state resampled: unsure pixels, compared
    blurred until learnt), a fixture absorbed, and the compiled model restored from its snapshot midway
    (its arrays others: set to rest whole). The compiled model's snapshot finds its busy pixels among
    the last look's changed ones, the numpy one's over every pixel."""
    rng = np.random.default_rng(16)
    ground = cv2.GaussianBlur(rng.integers(60, 200, (120, 160, 3), dtype=np.uint8), (7, 7), 0)
    config = StaticObjectsConfig(min_static=2.0, absorb_after=10.0)
    compiled, plain = StaticObjects(config), NumpyLook(config)
    pts = unseen = 0.0
    blobs = unsure = 0
    for look in range(60):
        frame = ground.copy()
        if look >= 5:
            frame[50:62, 40:60] = 230  # a bag, set down and left
        if look >= 44:
            frame[90:100, 100:116] = 30  # another, absorbed as a fixture after 10 s
        x = 4 * look % 140
        frame[20:70, x : x + 16] = 20  # a passer-by, boxed
        if look % 13 in (7, 8):
            frame = (frame * 0.6).astype(np.uint8)  # the light changes over the whole view
        cover = np.array([[x, 20, x + 16, 70]], np.float32)
        pts += 1.0 + look % 2
        unseen += 3.0 if look == 20 else 0.0
        person = None if look < 15 else 40.0  # known from look 15: another scale
        if look == 30:
            assert compiled.load_arrays(compiled.arrays())
        found = [model.update(frame, pts, person, cover, unseen) for model in (compiled, plain)]
        for name in ("fast", "slow", "timer", "arrived", "seen", "unsure"):
            np.testing.assert_array_equal(
                getattr(compiled, name), getattr(plain, name), err_msg=f"{name} at look {look}"
            )
        assert compiled.gain == plain.gain, look
        np.testing.assert_array_equal(found[0].xyxy, found[1].xyxy)
        np.testing.assert_array_equal(found[0].static_seconds, found[1].static_seconds)
        among_changed, over_all = compiled.arrays(), plain.arrays()
        assert among_changed.keys() == over_all.keys()
        for name, array in over_all.items():
            assert among_changed[name].dtype == array.dtype, name
            np.testing.assert_array_equal(
                among_changed[name], array, err_msg=f"snapshot {name} at look {look}"
            )
        blobs += len(found[0])
        unsure += int(plain.unsure is not None and plain.unsure.any())
    assert blobs > 0 and unsure > 0  # the bags timed to blobs; the rescale left unsure pixels


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
