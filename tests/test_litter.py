"""Litter: the dual-background model on arrays, and the whole rule on real pixels."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from vision.camera.packing import pack, unpack
from vision.camera.unit import CameraUnit
from vision.config import EventsConfig, parse_config
from vision.evaluate.scenario import CutOut, Lighting, Placement, ScenarioSpec, render
from vision.ingest.sampler import Sampler
from vision.pipeline import Pipeline
from vision.scene.static_blobs import find_blobs
from vision.scene.static_objects import StaticObjects, StaticObjectsConfig
from vision.store import Store
from vision.types import Detections, Frame

from .conftest import FOOTAGE, IMAGES
from .rule_support import context

CFG = StaticObjectsConfig(work_width=160, fast_seconds=1.0, min_static=2.0, absorb_after=60.0)


def ground(value: int = 100) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(value + rng.normal(0, 3, (120, 160, 3)), 0, 255).astype(np.uint8)


def with_box(image: np.ndarray, value: int, box: tuple[int, int, int, int] = (60, 60, 90, 80)) -> np.ndarray:
    out = image.copy()
    x1, y1, x2, y2 = box
    out[y1:y2, x1:x2] = value
    out[y1 + 5 : y2 - 5, x1 + 5 : x2 - 5] = value // 2  # some texture: an object has inner edges
    return out


def run(model: StaticObjects, frames: list[np.ndarray], t0: float = 0.0, dt: float = 0.5) -> list[int]:
    return [len(model.update(f, t0 + i * dt)) for i, f in enumerate(frames)]


def test_object_that_arrives_and_stays_becomes_a_blob_and_leaves() -> None:
    model = StaticObjects(CFG)
    bg = ground()
    counts = run(model, [bg] * 4 + [with_box(bg, 220)] * 16)
    assert counts[:8] == [0] * 8 and counts[-1] == 1  # seen after it stayed, not at once
    blob = model.blobs
    assert np.allclose(blob.xyxy[0], [60, 60, 90, 80], atol=3)
    assert blob.static_seconds[0] >= CFG.min_static
    assert run(model, [bg] * 4, t0=10.0)[-1] == 0  # taken away: gone


def test_lighting_change_is_not_an_object() -> None:
    model = StaticObjects(CFG)
    bg = ground(120)
    dim = np.clip(bg.astype(np.float32) * 0.7, 0, 255).astype(np.uint8)
    assert max(run(model, [bg] * 4 + [dim] * 20)) == 0


def test_occlusion_pauses_and_ghosts_heal() -> None:
    model = StaticObjects(CFG)
    bg = ground()
    obj = with_box(bg, 220)
    run(model, [bg] * 2 + [obj] * 12)
    assert len(model.blobs) == 1
    timer = model.timer.copy()
    passer = with_box(obj, 30, (50, 40, 100, 100))  # a passer-by covers it for a second
    run(model, [passer, passer], t0=7.0)
    hidden = model.timer[30:40, 30:45]  # the object's pixels at work scale (160 of 160 px: scale 1)
    np.testing.assert_array_equal(hidden, timer[30:40, 30:45])  # paused, not reset, not counted
    assert run(model, [obj] * 2, t0=8.0)[-1] == 1  # still known afterwards
    # a model that starts with something in its first frame: when it leaves, that is no litter
    ghosty = StaticObjects(CFG)
    assert max(run(ghosty, [obj] * 2 + [bg] * 20)) == 0


def test_a_change_over_the_whole_analysed_box_is_healed_without_a_warning() -> None:
    """A blob that fills the whole analysed box has its outline out of view (no edge ring to judge it
    by): it is healed into the slow background, as a ghost is, explicitly, with no "mean of empty
    slice" warning. Timed on as a blob it would hide anything set down in the zone until
    ``absorb_after``, and a change over all the zone is no object lying in it."""
    model = StaticObjects(CFG)
    bg = ground()
    run(model, [bg])
    grey = model.fast.copy()
    model.slow = with_box(bg, 220, (0, 0, 160, 120))[..., 0].astype(np.float32)  # differs all over
    model.timer[:] = 10.0  # every pixel static
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        place = (model.step, model.origin, model.zone)
        blobs = find_blobs(CFG, grey, 1.0, np.ones(grey.shape, bool), model.slow, model.timer, None, place)
    assert len(blobs) == 0
    np.testing.assert_array_equal(model.slow, grey)  # healed: the frame is the background there
    assert not model.timer.any()


def rubbish_clip(path: Path) -> np.ndarray:
    """Real footage with a bundle of rubbish lying from 5 s to 35 s and a dimming at 25 s, written to
    ``path``; the bundle's box (xyxy, pixels)."""
    spec = ScenarioSpec(
        background=FOOTAGE,
        start=0.0,
        duration=50.0,
        fps=10,
        objects=[
            Placement(
                name="rubbish",
                object=CutOut(image=IMAGES / "dog.jpg", box=(128, 226, 320, 546)),  # a compact bundle
                at=(0.72, 0.62),
                width=36,
                appear=5.0,
                leave=35.0,
            )
        ],
        lighting=[Lighting(at=25.0, gain=0.8, ramp=2.0)],
    )
    return np.array(render(spec, path)["rubbish"], np.float32)


def test_litter_rule_on_real_pixels_opens_and_closes_one_ticket(tmp_path: Path, detector) -> None:
    clip = tmp_path / "litter.mp4"
    placed = rubbish_clip(clip)
    config = parse_config(
        f"cameras:\n  lawn:\n    url: {clip}\n    detect_fps: 5\n    zones:\n      ground:\n"
        "        polygon: [[0, 0.3], [1, 0.3], [1, 1], [0, 1]]\n"
        "        rules:\n          litter: {min_duration: 10, close_after: 5}\n"
    )
    store = Store(tmp_path / "data")
    transitions = []
    Pipeline(config, detector, store, on_transition=lambda t, p: transitions.append((t, p))).run()
    store.close()
    kinds = [(t.kind, t.event["subject"]) for t, _ in transitions]
    assert [k for k, _ in kinds] == ["open", "close"], kinds
    opened, closed = transitions[0][0], transitions[1][0]
    assert 15.0 <= opened.pts <= 25.0  # appeared at 5 s; static after a few s, then 10 s of dwell
    assert 40.0 <= closed.pts <= 45.0  # taken away at 35 s, closed after 5 s of verified absence
    box = opened.boxes.xyxy[0]
    inter = np.clip(np.minimum(box[2:], placed[2:]) - np.maximum(box[:2], placed[:2]), 0, None).prod()
    union = np.prod(box[2:] - box[:2]) + np.prod(placed[2:] - placed[:2]) - inter
    assert inter / union > 0.5, (box, placed)


def test_litter_rule_evidence_people_and_occlusion() -> None:
    from vision.rules.litter import LitterConfig, LitterRule
    from vision.scene.static_objects import Blobs
    from vision.scene.zones import Zone
    from vision.types import Condition, Detections, Frame

    names = {0: "person", 43: "bottle", 46: "cup"}
    zone = Zone("ground", np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64))
    rule = LitterRule("cam", zone, LitterConfig(close_after=5), names)
    frame = Frame("cam", 0.0, np.zeros((480, 640, 3), np.uint8))

    def blobs(*boxes: tuple[float, float, float, float]) -> Blobs:
        n = len(boxes)
        xyxy, area = np.array(boxes, np.float32).reshape(n, 4), np.full(n, 400.0)
        return Blobs(xyxy, area, np.full(n, 5.0), area, np.full(n, "ground"))

    def dets(*rows: tuple[int, float, tuple[float, float, float, float]]) -> Detections:
        return Detections.from_arrays(
            np.array([r[2] for r in rows], np.float32).reshape(-1, 4),
            np.array([r[1] for r in rows]),
            np.array([r[0] for r in rows]),
        )

    # a blob alone, and a bottle on it: one subject, confirmed by both kinds of evidence
    (o,) = rule.observe(
        context(frame, dets((43, 0.7, (102, 298, 128, 321))), blobs=blobs((100, 300, 130, 320)))
    )
    assert o.condition is Condition.TRUE and o.subject == "object-1" and o.details["evidence"] == "blob+class"
    assert abs(o.confidence - (1 - 0.3 * 0.5)) < 1e-6
    # a person standing still makes a blob too: not litter
    both = blobs((100, 300, 130, 320), (300, 100, 340, 300))
    (o,) = rule.observe(context(frame, dets((0, 0.9, (295, 90, 345, 305))), blobs=both))
    assert o.subject == "object-1" and o.condition is Condition.TRUE
    # a passer-by hides the litter: unknown, not gone
    (o,) = rule.observe(context(frame, dets((0, 0.9, (90, 200, 140, 330)))))
    assert o.condition is Condition.UNKNOWN
    # nothing there and nobody in front: gone
    (o,) = rule.observe(context(frame, dets()))
    assert o.condition is Condition.FALSE
    # sizes: in analysis pixels (min_blob_area), and an older config's share of the frame still holds
    one = blobs((100, 300, 130, 320))
    for config, kept in (
        ({"min_blob_area": 401}, 0),
        ({"min_area": 400 / (640 * 480) * 1.01}, 0),
        ({"min_area": 400 / (640 * 480) * 0.99, "max_area": 0.01}, 1),
        ({"max_area": 400 / (640 * 480) * 0.99}, 0),
    ):
        sized = LitterRule("cam", zone, LitterConfig.model_validate(config), names)
        assert len(sized.blob_evidence(context(frame, dets(), blobs=one), np.zeros((0, 4)))) == kept, config


def test_a_zone_is_analysed_at_the_scale_its_people_set_and_a_new_scale_keeps_what_it_knew() -> None:
    from vision.scene.static_objects import ITEM_SHARE, analysis_scale

    cfg = StaticObjectsConfig(fast_seconds=1.0, min_static=2.0)
    region = (0.25, 0.25, 0.75, 0.75)  # a zone's box: the model sees only it (and a margin)
    areas = []
    # the same scene, and the same seen by a camera with three times the pixels: shrunk by the whole
    # factor nearest the wanted one in log ratio (1.5 and 4.5: 2 and 5)
    for k, n in ((1, 2), (3, 5)):
        model = StaticObjects(cfg, region=region)
        frames = [np.kron(f, np.ones((k, k, 1), np.uint8)) for f in (ground(), with_box(ground(), 220))]
        blob = [model.update(frames[i >= 2], i * 0.5, person_px=60.0 * k) for i in range(16)][-1]
        assert model.scale == pytest.approx(cfg.item_px / (ITEM_SHARE * 60.0 * k)) and model.step == (n, n)
        assert len(blob) == 1 and np.allclose(blob.xyxy[0], np.array([60, 60, 90, 80]) * k, atol=3 * k)
        areas.append(float(blob.work_area[0]) * (n * model.scale) ** 2)  # at the wanted scale
    assert areas[1] == pytest.approx(areas[0], rel=0.15)  # the same analysis pixels at both sizes
    # before the people's size is known: the frame's scale at work_width; once known, the zone's, and the
    # object lying there keeps its timer through the change
    model = StaticObjects(cfg, region=region)
    for i in range(12):
        model.update(with_box(ground(), 220) if i >= 2 else ground(), i * 0.5)
    assert model.scale == cfg.work_width / 160 and len(model.blobs) == 1
    before = float(model.blobs.static_seconds[0])
    blobs = model.update(with_box(ground(), 220), 6.0, person_px=60.0)
    assert model.scale == pytest.approx(cfg.item_px / (ITEM_SHARE * 60.0))
    assert len(blobs) == 1 and blobs.static_seconds[0] >= before
    # a passer-by in view when a coarse scale becomes a finer one: the coarse background is not kept
    # there (it would differ from the sharp paving for good); he is taken in as in a first frame, and
    # once he has gone that ghost heals: no blob, and in the end nothing differs from the background
    paving = ground() // 2 + (np.indices((120, 160)).sum(axis=0) // 4 % 2 * 120).astype(np.uint8)[..., None]
    passer = with_box(paving, 30, (100, 40, 115, 90))
    model = StaticObjects(cfg.model_copy(update={"work_width": 64}), region=region)  # coarse until sized
    for i, frame in enumerate([paving] * 4 + [passer, passer]):
        model.update(frame, i * 0.5, person_px=None if i < 5 else 20.0)  # sized at the last: 5x finer
    assert not any(len(model.update(paving, i * 0.5, person_px=20.0)) for i in range(6, 20))
    assert model.arrived is not None and (~np.isnan(model.arrived)).mean() < 0.01, (
        ~np.isnan(model.arrived)
    ).sum()
    # bounds: never enlarged past max_upscale, never more than max_pixels
    assert analysis_scale(cfg, (100, 100), 1920, 2.0) == cfg.max_upscale
    huge = analysis_scale(cfg, (1800, 1000), 1920, 20.0)
    assert 1800 * 1000 * huge**2 == pytest.approx(cfg.max_pixels)


def test_a_shrink_is_by_the_whole_factor_nearest_the_wanted_scale_within_snap_and_max_pixels() -> None:
    """A whole factor is OpenCV's fast INTER_AREA (a block mean): the capacity run's 640x360 substream,
    its zone the whole frame, people 45 px tall, is analysed at 320x180 (max_pixels wants 370x208)."""
    from vision.scene.static_config import SNAP, analysis_scale, whole_factor

    cfg = StaticObjectsConfig()
    wanted = analysis_scale(cfg, (640, 360), 640, 45.0)
    assert wanted == pytest.approx(0.577, abs=1e-3) and whole_factor(cfg, (640, 360), wanted) == 2
    model = StaticObjects(cfg)
    model.update(np.zeros((360, 640, 3), np.uint8), 0.0, person_px=45.0)
    assert model.fast is not None and model.fast.shape == (180, 320) and model.step == (2.0, 2.0)
    # a box of no whole blocks (565x321): its last row and column left out, the steps whole
    model = StaticObjects(cfg, region=(0.1, 0.1, 0.9, 0.9))
    model.update(np.zeros((363, 641, 3), np.uint8), 0.0, person_px=45.0)
    assert model.fast is not None and model.step == (2.0, 2.0) and model.fast.shape == (160, 282)
    # the nearest in log ratio (2.4: 2, 2.5: 3, the geometric mean of 2 and 3 is 2.45); none (the scale as
    # it is) for a slight shrink (1 would analyse more pixels than wanted), an enlargement, or where the
    # cap allows none within SNAP
    assert [whole_factor(cfg, (200, 100), 1 / r) for r in (2.4, 2.5, 1.2, 1.5, 4.0)] == [2, 3, 0, 2, 4]
    assert whole_factor(cfg, (100, 100), 2.0) == whole_factor(cfg, (100, 100), 1.0) == 0
    capped = analysis_scale(cfg, (400, 300), 400, 20.0)  # the cap wants 0.8: 1 is too many pixels, 2 too few
    assert capped == pytest.approx(0.8) and whole_factor(cfg, (400, 300), capped) == 0
    # whatever the box, frame and people: within SNAP of the wanted scale and never above max_pixels
    rng = np.random.default_rng(0)
    for _ in range(2000):
        box = (int(rng.integers(64, 4000)), int(rng.integers(64, 2200)))
        person = None if rng.random() < 0.2 else float(rng.uniform(5, 600))
        scale = analysis_scale(cfg, box, box[0] + int(rng.integers(0, 400)), person)
        n = whole_factor(cfg, box, scale)
        assert n == 0 or ((box[0] // n) * (box[1] // n) <= cfg.max_pixels and 1 / SNAP <= n * scale <= SNAP)
        assert n or scale > 1 / SNAP or 1 / (2 * SNAP) < scale < 0.5  # none: a slight shrink, or near the cap


def test_a_change_that_forms_under_a_person_is_timed_from_when_it_is_first_seen_alone() -> None:
    bg, obj = ground(), with_box(ground(), 220)
    person = np.array([[55.0, 30.0, 95.0, 85.0]])  # a person's box over the object's place
    # a man comes and stands there: what he changes (his shadow, his shifted legs) forms under his box
    stood = StaticObjects(CFG)
    for i in range(20):
        stood.update(bg if i < 2 else obj, i * 0.5, cover=None if i < 2 else person)
    assert stood.timer is not None and stood.timer.max() == 0 and len(stood.blobs) == 0  # no clock yet
    for i in range(20, 25):  # he has left at 10 s: the clock starts then, not when the change formed (1 s)
        stood.update(obj, i * 0.5, cover=np.zeros((0, 4)))
    assert len(stood.blobs) == 1 and stood.blobs.static_seconds[0] == pytest.approx(2.0)
    # a bag set down by someone who walks off within CATCH_UP time constants is timed from its landing
    set_down = StaticObjects(CFG)
    for i in range(12):
        set_down.update(bg if i < 2 else obj, i * 0.5, cover=person if 2 <= i < 4 else None)
    assert len(set_down.blobs) == 1 and set_down.blobs.static_seconds[0] == pytest.approx(4.5)
    # a bag seen alone when it landed keeps its clock when a passer-by later stands over it
    dropped = StaticObjects(CFG)
    for i in range(24):
        dropped.update(bg if i < 2 else obj, i * 0.5, cover=person if 12 <= i < 20 else None)
    assert len(dropped.blobs) == 1 and dropped.blobs.static_seconds[0] >= 9.5
    # a change touching a box anywhere is all under it: the shadow outside the man's box waits too
    leg = np.array([[55.0, 30.0, 65.0, 85.0]])
    shadow = StaticObjects(CFG)
    for i in range(20):
        shadow.update(bg if i < 2 else obj, i * 0.5, cover=None if i < 2 else leg)
    assert shadow.timer is not None and shadow.timer.max() == 0


def test_a_snapshot_keeps_every_pixels_bookkeeping_and_older_dense_snapshots_still_load() -> None:
    """The timers, arrival times, seen-alone and unsure flags are snapshotted only where they are not
    at rest (0, NaN, False): a restored model holds every array as the original did, finds the same
    blobs afterwards, and a snapshot of the older dense form (as integ8 wrote it) restores the same."""
    cfg = StaticObjectsConfig(work_width=64, fast_seconds=1.0, min_static=2.0)
    region = (0.25, 0.25, 0.75, 0.75)
    paving = ground() // 2 + (np.indices((120, 160)).sum(axis=0) // 4 % 2 * 120).astype(np.uint8)[..., None]
    bag = with_box(paving, 220, (55, 55, 75, 70))
    model = StaticObjects(cfg, region=region)
    frames = [paving] * 2 + [bag] * 8 + [with_box(bag, 30, (100, 40, 115, 90))] * 2
    for i, frame in enumerate(frames):  # a bag lies there; a passer-by in view when the scale becomes finer
        model.update(frame, i * 0.5, person_px=None if i < 11 else 20.0)
    assert model.timer is not None and model.unsure is not None and model.arrived is not None
    assert model.timer.max() > 0 and model.unsure.any() and len(model.blobs) == 1
    arrays = model.arrays()
    assert 0 < len(arrays["at"]) < model.timer.size / 4  # the bag and the passer-by, not every pixel
    dense = {k: v for k, v in arrays.items() if k != "at" and not k.endswith("_at")}
    dense |= {"timer": model.timer, "arrived": model.arrived, "seen": model.seen, "unsure": model.unsure}
    for snapshot in (arrays, dense):
        restored = StaticObjects(cfg, region=region)
        assert restored.load_arrays(snapshot)
        for name in ("fast", "slow", "timer", "arrived", "seen", "unsure"):
            kept, back = getattr(model, name), getattr(restored, name)
            assert back.dtype == kept.dtype, name
            np.testing.assert_array_equal(back, kept, err_msg=name)
        assert restored.coarse == model.coarse and (restored.scale, restored.last_pts) == (model.scale, 5.5)
    later = []
    for i in range(4):  # looks of few changed pixels: the busy ones looked for among theirs and the unsure
        later.append(model.update(bag, 6.0 + i * 0.5, person_px=20.0))
        assert model.unrested() is not None and model.unsure.any()
        busy = (model.timer != 0) | ~np.isnan(model.arrived) | model.seen | model.unsure
        np.testing.assert_array_equal(model.arrays()["at"], np.flatnonzero(busy))  # as over every pixel
    again = [restored.update(bag, 6.0 + i * 0.5, person_px=20.0) for i in range(4)]
    for a, b in zip(later, again, strict=True):
        np.testing.assert_array_equal(a.xyxy, b.xyxy)
        np.testing.assert_array_equal(a.static_seconds, b.static_seconds)
    assert len(later[-1]) == 1
    # indices outside the model's pixels are another model's arrays: refused, nothing taken
    beyond = {**arrays, "at": arrays["at"] + model.timer.size}
    assert not StaticObjects(cfg, region=region).load_arrays(beyond)


def test_a_snapshot_of_a_zone_changed_all_over_is_dense_and_a_whole_fast_background_uint8() -> None:
    """When most of the zone differs from its background (a floodlight on, a lens covered), the sparse
    bookkeeping would outweigh the dense arrays: they are kept dense. A look every ``fast_seconds`` makes
    the fast background the last frame, whole grey levels: kept as uint8. Both restore every value."""
    cfg = StaticObjectsConfig(work_width=64, fast_seconds=1.0, min_static=10.0)
    model = StaticObjects(cfg)
    blocks = (np.indices((120, 160)) // 40).sum(axis=0) % 2 * 120 - 60  # brighter and darker, as much
    turned = np.clip(ground().astype(int) + blocks[..., None], 0, 255).astype(np.uint8)  # gain 1: all changed
    for i, frame in enumerate([ground(), turned, turned, turned]):
        model.update(frame, i * 1.0)
    assert model.arrived is not None and model.fast is not None and model.timer is not None
    assert (~np.isnan(model.arrived)).mean() > 0.8 and model.timer.max() > 0  # dense is smaller above 13/17
    arrays = model.arrays()
    assert "at" not in arrays and arrays["timer"].shape == model.timer.shape  # dense
    assert arrays["fast"].dtype == np.uint8 and arrays["slow"].dtype == np.float32
    restored = StaticObjects(cfg)
    assert restored.load_arrays(unpack(pack(arrays)))
    for name in ("fast", "slow", "timer", "arrived", "seen"):
        kept, back = getattr(model, name), getattr(restored, name)
        assert back.dtype == kept.dtype, name
        np.testing.assert_array_equal(back, kept, err_msg=name)
    for i in range(4, 8):  # and carries on the same
        model.update(turned, i * 1.0), restored.update(turned, i * 1.0)
        for name in ("fast", "slow", "timer", "arrived", "seen"):
            np.testing.assert_array_equal(getattr(restored, name), getattr(model, name), err_msg=name)
    model.update(ground(101), 7.5)  # half a time constant: the fast background between grey levels
    assert model.arrays()["fast"].dtype == np.float32


def test_static_blobs_are_labelled_as_opencvs_connected_components_with_stats() -> None:
    """The blobs' labels and boxes are OpenCV's, their stats counted over the labelled pixels alone (or
    OpenCV's, on a small mask), the background's row zero: masks of either kind, sparse to dense."""
    import cv2

    from vision.scene.static_objects import connected_components

    rng = np.random.default_rng(3)
    masks = [np.zeros((20, 30), np.uint8), np.ones((20, 30), np.uint8)]
    for shape in ((120, 160), (40, 60), (1, 7), (90, 91)):  # over and under SMALL_MASK pixels
        masks += [(rng.random(shape) < share).astype(np.uint8) for share in (0.002, 0.05, 0.4)]
        masks.append(cv2.morphologyEx(masks[-1], cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)))
    for mask in masks:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        ours = connected_components(mask)
        assert ours[0] == n and np.array_equal(ours[1], labels)
        assert ours[2].dtype == stats.dtype and not ours[2][0].any()
        np.testing.assert_array_equal(ours[2][1:], stats[1:])


def test_the_rules_class_masks_are_np_isins() -> None:
    """The litter rule picks its blockers and litter boxes with member_of (np.isin's set-up cost more
    than the comparison on a frame's few boxes): the same masks as np.isin, for ids in and out of
    the set, -1, the blobs' NO_CLASS and empty sets on either side."""
    from vision.types import NO_CLASS, member_of

    rng = np.random.default_rng(16)
    sets = [np.zeros(0, np.int32), np.array([0], np.int32), np.array([39, 41, 0, 2], np.int32)]
    for _ in range(50):
        class_id = rng.integers(-1, 80, rng.integers(0, 12)).astype(np.int32)
        class_id[rng.random(len(class_id)) < 0.2] = NO_CLASS
        for ids in sets:
            mask = member_of(class_id, ids)
            assert mask.dtype == bool and mask.shape == class_id.shape
            assert np.array_equal(mask, np.isin(class_id, ids))


def test_a_camera_restored_from_its_checkpoint_carries_on_exactly_as_if_never_stopped(
    tmp_path: Path, detector
) -> None:
    """A checkpoint written to the store on disk and restored in a new unit carries on exactly as the unit
    that never stopped would have had it been dark for the restart's gap (CameraUnit.restore: unknown
    time): the same static blobs, of the same ages, at every later frame, and the same ticket. Against a
    camera never dark, the ticket opens that gap later and closes at the same time, whether the
    checkpoint was taken while the rubbish's pixels are timed but nothing is under way yet (the model does
    not credit the gap to its timers: before it kept the camera's unseen time, such a ticket opened as if
    the gap had been watched) or while its episode is under way (the lifecycle pauses it). At 0.5
    detections/s (a look every ``fast_seconds``) the fast background holds whole grey levels and is stored
    as uint8."""
    clip = tmp_path / "litter.mp4"
    rubbish_clip(clip)
    camera = parse_config(
        f"cameras:\n  lawn:\n    url: {clip}\n    detect_fps: 0.5\n    zones:\n      ground:\n"
        "        polygon: [[0, 0.3], [1, 0.3], [1, 1], [0, 1]]\n"
        "        rules:\n          litter: {min_duration: 10, close_after: 5}\n"
    ).cameras["lawn"]
    sampler = Sampler(camera.detect_fps)
    with av.open(str(clip)) as container:
        frames = [
            Frame("lawn", pts, f.to_ndarray(format="bgr24"))
            for f in container.decode(video=0)
            if sampler.due(pts := float(f.time or 0.0))
        ]
    found = [detector.detect([frame.image])[0] for frame in frames]
    plain = CameraUnit("lawn", camera, detector.names, EventsConfig())
    never_dark = [(t.kind, t.pts) for f, d in zip(frames, found, strict=True) for t in plain.process(f, d)[1]]
    assert [kind for kind, _ in never_dark] == ["open", "close"], never_dark
    (_, opened), closed = never_dark
    for at, under_way in ((8.0, False), (12.0, True)):  # the rubbish lies there from 5 s
        cut = next(i for i, frame in enumerate(frames) if frame.pts >= at)
        kept = CameraUnit("lawn", camera, detector.names, EventsConfig())
        for frame, detections in zip(frames[: cut + 1], found, strict=False):
            assert kept.process(kept.stamp(frame), detections)[1] == []  # nothing opens before 15 s
        model = kept.analysis.scene.static["ground"]
        assert model.timer is not None and model.timer.max() > 0  # the rubbish's pixels are timed
        assert bool(kept.lifecycle.live_keys()) is under_way
        store = Store(tmp_path / f"data{at:g}")
        store.checkpoint("lawn", kept.snapshot())
        saved = store.another().snapshot("lawn")
        store.close()
        assert saved is not None and saved[0].arrays is not None
        assert unpack(saved[0].arrays)["static.ground:fast"].dtype == np.uint8
        restored = CameraUnit("lawn", camera, detector.names, EventsConfig())
        gap = frames[cut + 1].pts - frames[cut].pts  # a file read as fast as it decodes: one interval
        assert restored.restore(saved[0], [], gap) == []
        back = restored.analysis.scene.static["ground"]
        for name in ("fast", "slow", "timer", "arrived", "seen"):  # every value, in its working dtype
            assert getattr(back, name).dtype == getattr(model, name).dtype, name
            np.testing.assert_array_equal(getattr(back, name), getattr(model, name), err_msg=name)
        assert back.unseen == model.unseen == 0.0
        assert kept.unknown(frames[cut + 1].pts) == []  # the unit that never stopped, dark for the gap
        after: list[list[tuple[str, float]]] = [[], []]
        for frame, detections in zip(frames[cut + 1 :], found[cut + 1 :], strict=True):
            for unit, out in zip((kept, restored), after, strict=True):
                stamped = unit.stamp(frame)
                assert stamped.pts == frame.pts  # the restored camera clock goes on as the stream's
                out += [(t.kind, t.pts) for t in unit.process(stamped, detections)[1]]
            a, b = kept.analysis.scene.static["ground"].blobs, restored.analysis.scene.static["ground"].blobs
            np.testing.assert_array_equal(a.xyxy, b.xyxy)
            np.testing.assert_array_equal(a.static_seconds, b.static_seconds)
        assert after[0] == after[1] == [("open", opened + gap), closed], (after, never_dark)


def test_time_the_camera_was_dark_is_not_credited_to_litter() -> None:
    """A bag lands at 4 s; the camera goes dark at 5.5 s, before the model calls it static (no
    episode is under way for the lifecycle to pause), and sees it again at 45.5 s. On stream time
    the blob came back 41.5 s old and the ticket opened at once (45.5 s, 1 s watched); dated from the
    come-back, a whole ``min_duration`` (20 s) later (65.5 s). The model's timers count only time in
    view: 1 s before the dark spell (4 to 5 s) and 19 s after, so it opens at 64.5 s."""
    camera = parse_config(
        "cameras:\n  c:\n    url: x.mp4\n"
        "    static_objects: {work_width: 160, fast_seconds: 1.0, min_static: 2.0, look_every: 0}\n"
        "    zones:\n      ground:\n        polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]\n"
        "        rules:\n          litter: {min_duration: 20, close_after: 5}\n"
    ).cameras["c"]
    unit = CameraUnit("c", camera, {0: "person", 39: "bottle", 41: "cup"}, EventsConfig(update_interval=1e9))
    bg = ground()
    bag = with_box(bg, 220)
    opened: list[float] = []
    for i in range(160):
        pts = i * 0.5
        if 5.5 <= pts < 45.5:
            opened += [t.pts for t in unit.unknown(pts) if t.kind == "open"]
            continue
        frame = unit.stamp(Frame("c", pts, bag if pts >= 4.0 else bg))
        opened += [t.pts for t in unit.process(frame, Detections.empty())[1] if t.kind == "open"]
    assert opened == [64.5], opened


@pytest.mark.parametrize("kept_unseen", [True, False], ids=["checkpoint", "older checkpoint"])
def test_a_bag_seen_5s_before_a_minutes_restart_is_ticketed_after_min_duration_in_view(
    tmp_path: Path, kept_unseen: bool
) -> None:
    """A bag lands at 10 s; the camera is checkpointed to the store on disk at 15 s (nothing under way
    yet: the model has timed it, but calls a pixel static only after 6 s) and restored in a new unit 60 s
    later, as the pipeline restores a live camera (the gap is the wall time nobody watched; the new
    stream's pts start again from 0). The bag was in view 5 s: its ticket opens 15 s (``min_duration``
    20 s less 5) after the come-back at 75 s, not at the come-back as the model's stream-time timers had
    it. A checkpoint from before the model kept the camera's unseen time restores too, taking the gap as
    unseen."""
    camera = parse_config(
        "cameras:\n  c:\n    url: x.mp4\n"
        "    static_objects: {work_width: 160, fast_seconds: 1.0, min_static: 6.0}\n"
        "    zones:\n      ground:\n        polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]\n"
        "        rules:\n          litter: {min_duration: 20, close_after: 5}\n"
    ).cameras["c"]
    names, events = {0: "person", 39: "bottle", 41: "cup"}, EventsConfig(update_interval=1e9)
    bg = ground()
    bag = with_box(bg, 220)
    first = CameraUnit("c", camera, names, events)
    for i in range(31):  # 0 to 15 s
        frame = first.stamp(Frame("c", i * 0.5, bag if i * 0.5 >= 10.0 else bg))
        assert first.process(frame, Detections.empty())[1] == []
    assert first.lifecycle.live_keys() == [] and first.analysis.scene.static["ground"].timer.max() > 0
    store = Store(tmp_path / "data")
    snapshot = first.snapshot()
    if not kept_unseen:
        assert snapshot.arrays is not None
        arrays = unpack(snapshot.arrays)
        assert arrays.pop("static.ground:unseen") == 0.0
        snapshot = replace(snapshot, arrays=pack(arrays))
    store.checkpoint("c", snapshot)
    saved = store.another().snapshot("c")
    store.close()
    assert saved is not None
    unit = CameraUnit("c", camera, names, events)
    assert unit.restore(saved[0], [], 60.0) == []
    opened: list[float] = []
    for i in range(80):  # a new stream from 0: the camera clock carries on from 75 s
        frame = unit.stamp(Frame("c", i * 0.5, bag))
        opened += [t.pts for t in unit.process(frame, Detections.empty())[1] if t.kind == "open"]
    assert opened == [90.0], opened
