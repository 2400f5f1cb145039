"""Per camera, where the detector looks: the whole frame, or tiles of the right size over the zones.

A model sees the whole frame shrunk to its input; a person of ``h`` frame pixels becomes
``h * scale`` model pixels, and below the card's ``min_object_px`` the model stops finding
it. So for each zone, from the people's height there (sizes.py) and the model's input:

- if the far people of the zone are big enough in the whole frame, the zone needs nothing more;
- else tiles of side ``T = input * small / min_object_px`` cover the zone (grown by a person's
  height, where their bodies stand out of it), overlapping by at least two small people so
  anyone fits whole in one tile, plus one whole-frame pass for the large objects. Tiles
  that would magnify less than GAIN times over the whole frame are not worth their cost.
  Zones side by side share one grid (of the smaller of their tile sides) where it costs no
  more tiles than a grid each, so three zones over one distant plaza do not each tile the
  same people; a zone smaller than its tile is one tile about it.
  A card with ``looks: 2`` (a model that finds only some of the small people even at its best
  scale) gets a second grid of tiles GROW times larger over the same areas: two chances each.
- While a zone's size is unknown (no calibration, too few people seen yet) the zones are
  surveyed: covered by tiles at the model's native scale, so people too small for the whole
  frame can be seen at all; a frame already near the model's input is never surveyed. A
  survey rolls: one frame in ``survey_every`` gets the next ``survey_tiles`` of its tiles, in
  a fixed order, so a survey adds at most that many inferences to any frame (a whole survey
  on one frame was 16 inferences for the SSD on 720p: at capacity, the frames it fell on
  made every camera late). A frame whose tiles find people there is followed by whole
  surveys, frame after frame, until their size is known. Once a round of the tiles has found
  nobody the gap doubles (up to BACKOFF times ``survey_every``): a car park that stays empty
  pays 2 inferences in 25 frames at first, one in 200 frames after a few rounds (the gap and
  the round's progress are in the camera's snapshot, so a restart does not begin the rounds
  again). Cameras run together are staggered: camera i's surveys come i
  frames (modulo ``survey_every``) later, so they do not fall in the same inference rounds.

The plan is a pure function of the frame size, the model and the estimates, and changes
only when an estimate moves by more than REPLAN, so a replay plans the same frames alike.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vision.config import CameraConfig, RegionsConfig
from vision.detect.card import ModelCard
from vision.detect.plans import ALIGN, FULL, GROW, Area, DetectionPlan, ModelScale, joined
from vision.detect.regions import tile_boxes, zone_boxes
from vision.detect.sizes import ObjectSizes
from vision.scene.calibration import GroundPlane
from vision.scene.scene import Scene
from vision.scene.zones import Zone
from vision.types import Detections

GAIN = 1.5  # tiles must magnify at least this much over the whole frame to be worth their cost
REPLAN = 0.2  # relative change of a zone's estimate that makes a new plan
BACKOFF = 16  # most times survey_every between two surveys of zones where surveys keep finding nobody


class Planner:
    """One camera's detection plan: ``boxes()`` before each frame's detection, ``observe()`` after."""

    def __init__(
        self,
        config: RegionsConfig,
        zones: dict[str, Zone],
        model: ModelScale,
        sizes: ObjectSizes,
        index: int = 0,
    ) -> None:
        """``index``: the camera's place among those run together (its surveys are staggered, see
        :meth:`for_camera`)."""
        self.config = config
        self.index = index
        self.zones = zones
        self.model = model
        self.sizes = sizes
        self.plan = FULL
        self.frames = 0
        self._key: tuple[Any, ...] | None = None
        self._basis: dict[str, tuple[float, float] | None] = {}
        # zones surveyed now, the people seen there before, the round's tiles looked at once it is done
        self._surveyed: tuple[list[str], int, int, int] | None = None
        self._found = False  # the last survey found people in zones not sized yet: survey the next frame too
        self._gap = config.survey_every  # frames from one survey to the next; doubles after a fruitless round
        self._due = 1 + self._stagger()  # the frame number of the next survey
        self._next = 0  # the first tile of the round not looked at yet

    @classmethod
    def for_camera(
        cls,
        config: RegionsConfig,
        zones: dict[str, Zone],
        ground: GroundPlane | None,
        card: ModelCard,
        index: int = 0,
    ) -> Planner:
        """The planner of a camera with these zones (and calibration) for this model; ``index``: the
        camera's place among those run together. Camera i surveys its first frame i (modulo
        ``survey_every``) frames late, and again so after new zones: cameras that start together do
        not all survey the same frames. A whole survey was 5-20 inferences, and the pipeline batches the
        cameras' frames into rounds: 48 cameras surveying their first frames together made one round
        of ~800 inferences, and no camera saw a result for 30 s. It depends only on the config, so
        a replay surveys the same frames."""
        model = ModelScale.of(card.input, card.min_object_px, card.looks)
        return cls(config, zones, model, ObjectSizes(zones, card.people, ground), index)

    def outlook(self, width: int, height: int) -> str:
        """What this camera will do with frames of this size before it has seen anyone (for ``check``)."""
        estimates = {name: self.sizes.estimate(name, width, height) for name in self.zones}
        plan = (
            self._auto(width, height, estimates)
            if self.config.mode == "auto"
            else self._by_hand(width, height)
        )
        line = f"{width}x{height}: {plan.mode}, {plan.inferences} inference(s) per frame"
        if self.config.mode == "auto":
            tiles = self._survey_tiles(width, height, estimates)
            if tiles is not None and self.config.survey_every:
                step = min(len(tiles), self.config.survey_tiles or len(tiles))
                line += (
                    f"; until people are seen, 1 frame in {self.config.survey_every} gets {step} more "
                    f"inference(s), a survey of {len(tiles)} tiles at the model's scale (less often while "
                    "surveys find nobody)"
                )
        return line + "".join(f"; {zone}: {why}" for zone, why in plan.zones.items())

    def reconfigure(self, config: RegionsConfig, zones: dict[str, Zone]) -> None:
        """New zones or settings: plan again at the next frame, keeping what zones still here learnt."""
        sizes = ObjectSizes(zones, self.sizes.people, self.sizes.ground)
        sizes.carry(self.sizes)
        self.config, self.zones, self.sizes, self._key = config, zones, sizes, None
        self._surveyed, self._next = None, 0  # a survey under way was of the old zones
        self._gap, self._due = config.survey_every, self.frames + 1 + self._stagger()  # new zones: soon

    def _stagger(self) -> int:
        """Frames this camera's surveys come after a first camera's."""
        every = self.config.survey_every
        return self.index % every if every else 0

    def state(self) -> dict[str, Any]:
        """What the planner learnt (the people's sizes per zone, how far its surveys have got), for the
        camera's snapshot."""
        return {"sizes": self.sizes.state(), "survey": {"gap": self._gap, "next": self._next}}

    def load(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state` (a restarted camera plans from what it had learnt, at once, and goes
        on with its surveys where they were, at its staggered frame: an empty car park restarted does
        not begin its rounds again at the shortest gap)."""
        self.sizes.load(state.get("sizes", {}))
        self._key = None
        survey = state.get("survey", {})
        every = self.config.survey_every
        self._gap = min(max(int(survey.get("gap", every)), every), BACKOFF * every)
        self._next = max(0, int(survey.get("next", 0)))

    def observe(self, detections: Detections, width: int, height: int) -> None:
        """Learn the people's sizes from one frame's detections."""
        if self.config.mode == "auto":
            self.sizes.observe(detections, width, height)
            if self._surveyed is not None:
                self._surveyed_seen(*self._surveyed)

    def boxes(self, width: int, height: int) -> np.ndarray | None:
        """Crop boxes for the next frame of this size (None: the whole frame only)."""
        self.frames += 1
        cfg = self.config
        if cfg.mode != "auto":
            key: tuple[Any, ...] = (width, height)
            if key != self._key:
                self.plan, self._key = self._by_hand(width, height), key
            return self.plan.boxes
        estimates = {name: self.sizes.estimate(name, width, height) for name in self.zones}
        if (width, height) != (self._key or (None, None))[:2] or self._moved(estimates):
            self._basis = {k: None if v is None else v[:2] for k, v in estimates.items()}
            self.plan, self._key = self._auto(width, height, estimates), (width, height)
        return self._surveying(width, height, estimates)

    def _moved(self, estimates: dict[str, tuple[float, float, str] | None]) -> bool:
        for name, now in estimates.items():
            before = self._basis.get(name)
            if (now is None) != (before is None):
                return True
            if now is not None and before is not None and abs(now[0] - before[0]) > REPLAN * before[0]:
                return True
        return False

    def _by_hand(self, width: int, height: int) -> DetectionPlan:
        cfg = self.config
        polygons = [z.polygon for z in self.zones.values()]
        if cfg.mode == "full" or (cfg.mode == "zones" and not polygons):
            return FULL
        if cfg.mode == "zones":
            boxes = zone_boxes(polygons, width, height, cfg.margin, cfg.min_size)
        else:
            boxes = tile_boxes(width, height, cfg.tile_size, cfg.tile_overlap)
        return DetectionPlan(cfg.mode, self._with_frame(boxes, width, height))

    def _with_frame(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
        if not self.config.full_frame:
            return boxes
        return np.concatenate([np.array([[0, 0, width, height]], np.int32), boxes])

    def _auto(
        self, width: int, height: int, estimates: dict[str, tuple[float, float, str] | None]
    ) -> DetectionPlan:
        """Whole frame where it suffices, tiles over the zones whose far people it shrinks too much."""
        scale, model = self.model.frame_scale(width, height), self.model
        why: dict[str, str] = {}
        wanted: dict[str, tuple[int, float, float]] = {}  # zone -> tile side, small, large
        for name, estimate in estimates.items():
            if estimate is None:
                why[name] = "person size not known yet: whole frame"
                continue
            small, large, source = estimate
            seen = f"people {small:.0f}-{large:.0f} px ({source})"
            if small * scale >= model.min_object_px:
                why[name] = f"{seen}: whole frame ({small * scale:.0f} px at the model)"
                continue
            fitting = math.floor(model.side * small / model.min_object_px / ALIGN) * ALIGN
            side = max(ALIGN, model.side // 2, fitting)
            if model.side / side < GAIN * scale:
                why[name] = f"{seen}: whole frame (tiles would not magnify {GAIN:g}x)"
                continue
            wanted[name] = (side, small, large)
        boxes = self._tiles(wanted, width, height, model.looks)
        if boxes is None:
            return DetectionPlan("full", None, why)
        boxes, sides = boxes
        for name, (_, small, large) in wanted.items():
            source = estimates[name][2]  # type: ignore[index]
            tiles = " and ".join(str(side) for side in sides[name])
            why[name] = f"people {small:.0f}-{large:.0f} px ({source}): tiles of {tiles} px"
        return DetectionPlan("tiles", self._with_frame(boxes, width, height), why)

    def _tiles(
        self, wanted: dict[str, tuple[int, float, float]], width: int, height: int, looks: int = 1
    ) -> tuple[np.ndarray, dict[str, list[int]]] | None:
        """Tiles over each zone that needs them, grown as a whole until the plan is within budget; with
        ``looks`` 2, a second grid of tiles GROW times larger over the same areas: each person is seen at
        two scales and two offsets (a look that misses them is not repeated, pixel for pixel, by the
        other), and the boxes of both looks merge as any overlapping crops' do."""
        if not wanted:
            return None
        growth = 1.0
        while True:
            sides = {
                name: min(max(width, height), math.ceil(side * growth / ALIGN) * ALIGN)
                for name, (side, _, _) in wanted.items()
            }
            least = max(ALIGN, self.model.side // 2)
            areas = joined(
                [
                    self._zone_area(name, sides[name], small, large, width, height)
                    for name, (_, small, large) in wanted.items()
                ]
            )
            areas = [area.snug(least) for area in areas]
            areas += [area.larger() for area in areas] if looks > 1 else []
            boxes = np.unique(np.concatenate([area.grid() for area in areas]), axis=0)
            if len(boxes) + int(self.config.full_frame) <= self.config.max_inferences or all(
                s >= max(width, height) for s in sides.values()
            ):
                chosen: dict[str, list[int]] = {}
                for area in areas:
                    for name in area.names:
                        chosen.setdefault(name, []).append(area.side)
                return boxes, chosen
            growth *= GROW

    def _zone_area(self, name: str, side: int, small: float, large: float, width: int, height: int) -> Area:
        """The part of the frame to tile for a zone: the zone grown by where its people's bodies reach."""
        zone = self.zones[name]
        x1, y1 = zone.polygon.min(axis=0) * (width, height)
        x2, y2 = zone.polygon.max(axis=0) * (width, height)
        up = large if zone.anchor == "bottom_center" else large / 2
        box = (x1 - large / 2, y1 - up, x2 + large / 2, y2 + large / 4)
        inside = (max(math.floor(box[0]), 0), max(math.floor(box[1]), 0))
        inside += (min(math.ceil(box[2]), width), min(math.ceil(box[3]), height))
        overlap = min(0.5, max(self.config.tile_overlap, 2 * small / side))
        return Area(inside, side, overlap, (width, height), (name,))

    def _surveying(
        self, width: int, height: int, estimates: dict[str, tuple[float, float, str] | None]
    ) -> np.ndarray | None:
        """This frame's boxes: the plan's, with the survey's next tiles when one is due."""
        if self.frames < self._due and not self._found:
            return self.plan.boxes
        tiles = self._survey_tiles(width, height, estimates)
        if tiles is None:
            self._found = False
            return self.plan.boxes
        start = 0 if self._found or self._next >= len(tiles) else self._next
        end = len(tiles) if self._found or not self.config.survey_tiles else start + self.config.survey_tiles
        unknown = [name for name, e in estimates.items() if e is None]
        self._surveyed = (unknown, self.sizes.seen(unknown), min(end, len(tiles)), len(tiles))
        self._due = self.frames + self._gap  # observe() moves it on from what the tiles found
        steady = [] if self.plan.boxes is None else [self.plan.boxes]
        boxes = np.unique(np.concatenate([tiles[start:end], *steady]), axis=0)
        return self._with_frame(boxes[(boxes != [0, 0, width, height]).any(axis=1)], width, height)

    def _surveyed_seen(self, names: list[str], before: int, looked: int, tiles: int) -> None:
        """After a surveyed frame: people found in the zones not sized yet survey the next frame whole;
        else the round goes on at the gap, which doubles once the round has looked at every tile."""
        every = self.config.survey_every
        self._found = self.sizes.seen(names) > before
        self._surveyed = None
        if self._found:
            self._gap, self._next = every, 0
        elif looked >= tiles:
            self._gap, self._next = min(2 * self._gap, BACKOFF * every), 0
        else:
            self._next = looked
        self._due = self.frames + self._gap

    def _survey_tiles(
        self, width: int, height: int, estimates: dict[str, tuple[float, float, str] | None]
    ) -> np.ndarray | None:
        """[R, 4] native-scale tiles over the zones not sized yet, in a fixed order (None: no survey,
        every zone sized, surveys off, or a frame the model hardly shrinks)."""
        every, scale = self.config.survey_every, self.model.frame_scale(width, height)
        unknown = {name: None for name, e in estimates.items() if e is None}
        if not unknown or every == 0 or 1 / scale < GAIN:
            return None
        guess = height / 10  # the people's height is unknown: grow the zones by a tenth of the frame
        wanted = {name: (self.model.side, guess / 4, guess) for name in unknown}
        found = self._tiles(wanted, width, height)
        return None if found is None else found[0]


def camera_outlook(camera: CameraConfig, card: ModelCard, size: tuple[int, int] | str | None) -> str:
    """One line on a camera's detection plan and its cost at its frame ``size`` (vision/ingest/probe.py),
    or why it cannot be read; None: a live camera not connected to, planned at its first frame."""
    if size is None:
        return f"{camera.detect_regions.mode}, planned at the first frame (check --probe connects to it)"
    if isinstance(size, str):
        return f"not planned: {size}"
    scene = Scene.from_config(camera, card.labels)
    return Planner.for_camera(camera.detect_regions, scene.zones, scene.ground, card).outlook(*size)
