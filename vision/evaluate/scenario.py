"""Scenario clips from real pixels: a real background video plus real object cut-outs
that appear, stay and leave at known times, with lighting changes.

Ground truth is exact because the generator places the objects; the pixels stay real
(real footage, real photos), so detectors and background models meet real texture,
real passers-by and real compression. A YAML spec makes every clip reproducible, and
users can build their own from their camera's background: ``street-vision scenario
SPEC`` writes the clip, its ground-truth file and, for labelled objects, their boxes
on every frame (COCO JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vision.config import ConfigError, Name, load_yaml, resolve_path
from vision.evaluate.truth import Incident, TruthSettings, incident_problems

FOREGROUND_DIFF = 28  # grey levels between a frame and the footage's median: a passer-by's pixel
MIN_PASSER_AREA = 80  # pixels of a foreground blob that can be a passer-by (less: noise)


class ScenarioError(Exception):
    """A spec that cannot be rendered; the message names the spec and the key."""


class CutOut(BaseModel):
    """A real object: a box of a photo, cut from its background with GrabCut."""

    model_config = ConfigDict(extra="forbid")

    image: Path = Field(description="The photo (relative to the spec file).")
    box: tuple[int, int, int, int] = Field(description="x1, y1, x2, y2 of the object in the photo, pixels.")
    cut: Literal["grabcut", "box"] = Field(
        "grabcut",
        description="grabcut: the object's own outline; box: the whole box, background included "
        "(for thin objects such as bicycles, which GrabCut cuts apart).",
    )


class PlacedIncident(BaseModel):
    """The incident a placed object is, for the ground truth: from when it appears until it leaves."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="Event type the system should report (litter, bike_parking, ...).")
    zone: Name = Field(description="Zone of the camera it lies in.")
    note: str = Field("", description="What it is, for the report.")


class Placement(BaseModel):
    """When and where one object lies (or walks) in the clip."""

    model_config = ConfigDict(extra="forbid")

    name: str
    object: CutOut
    at: tuple[float, float] = Field(description="Bottom-centre of the object, normalized (0..1) in the clip.")
    to: tuple[float, float] | None = Field(
        None, description="Where it has walked to when it leaves (a passer-by); None: it stays put."
    )
    width: int = Field(gt=2, description="Width of the pasted object in pixels (height keeps the aspect).")
    appear: float = Field(ge=0, description="Second it appears.")
    leave: float | None = Field(None, description="Second it is taken away; None: it stays to the end.")
    behind_passers_by: bool = Field(
        False,
        description="People of the footage whose feet are nearer the camera (lower in the image) than "
        "the object's bottom walk in front of it and hide it.",
    )
    label: str | None = Field(
        None,
        description="Class name of its per-frame boxes for detection metrics (e.g. bicycle); label only "
        "classes the background footage never shows, since nothing else in it is annotated.",
    )
    incident: PlacedIncident | None = Field(None, description="The incident it is, if any.")

    def to_incident(self) -> Incident | None:
        """The incident this object is: from when it appears until it leaves."""
        if self.incident is None:
            return None
        i = self.incident
        return Incident(type=i.type, zone=i.zone, start=self.appear, end=self.leave, note=i.note or self.name)

    @model_validator(mode="after")
    def _order(self) -> Placement:
        if self.leave is not None and self.leave <= self.appear:
            raise ValueError(f"leave ({self.leave}) must be after appear ({self.appear})")
        if self.to is not None and self.leave is None:
            raise ValueError("an object that moves ('to') needs 'leave': the second it arrives there")
        return self


class Lighting(BaseModel):
    """A change of global brightness, ramped over ``ramp`` seconds."""

    model_config = ConfigDict(extra="forbid")

    at: float = Field(ge=0)
    gain: float = Field(gt=0, le=4)
    ramp: float = Field(1.0, ge=0)


class ScenarioTruth(TruthSettings):
    """How the system should watch the clip (written into its ground-truth file)."""

    incidents: list[Incident] = Field(
        default_factory=list,
        description="Incidents of the background footage itself, besides the placed ones.",
    )


class ScenarioSpec(BaseModel):
    """A whole clip."""

    model_config = ConfigDict(extra="forbid")

    background: Path = Field(description="Real footage to use as the background (relative to the spec).")
    start: float = Field(0.0, ge=0, description="Second of the background video to start from.")
    duration: float = Field(gt=0, description="Length of the clip in seconds.")
    fps: int = Field(10, gt=0, le=60)
    crf: int = Field(26, ge=0, le=51, description="H.264 quality (lower is better and larger).")
    objects: list[Placement] = Field(default_factory=list)
    lighting: list[Lighting] = Field(default_factory=list)
    truth: ScenarioTruth | None = Field(None, description="Camera settings for the clip's ground-truth file.")

    @model_validator(mode="after")
    def _incidents_fit(self) -> ScenarioSpec:
        if self.truth is not None:
            problems = incident_problems(self.truth.camera, self.incidents())
            if problems:
                raise ValueError("truth: " + "; ".join(problems).replace("[", "incident ["))
        return self

    def incidents(self) -> list[Incident]:
        """The ground truth's incidents: the placed objects', then the footage's own."""
        placed = [inc for p in self.objects if (inc := p.to_incident()) is not None]
        return placed + (self.truth.incidents if self.truth else [])


def load_spec(path: Path) -> ScenarioSpec:
    """Read a spec; relative paths are relative to its folder."""
    spec = load_yaml(path, ScenarioSpec, "scenario spec")
    base = path.resolve().parent
    spec.background = resolve_path(spec.background, base)
    for placement in spec.objects:
        placement.object.image = resolve_path(placement.object.image, base)
    return spec


def cut_out(cut: CutOut) -> tuple[np.ndarray, np.ndarray]:
    """BGR pixels and a float alpha in [0, 1] of the object, by GrabCut inside its box."""
    photo = cv2.imread(str(cut.image))
    if photo is None:
        raise ScenarioError(f"{cut.image}: cannot read it as an image")
    x1, y1, x2, y2 = cut.box
    h, w = photo.shape[:2]
    if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
        raise ScenarioError(f"{cut.image}: box {cut.box} is outside the {w}x{h} image")
    if cut.cut == "box":
        return photo[y1:y2, x1:x2], np.ones((y2 - y1, x2 - x1), np.float32)
    mask = np.zeros((h, w), np.uint8)
    cv2.grabCut(
        photo,
        mask,
        (x1, y1, x2 - x1, y2 - y1),
        np.zeros((1, 65)),
        np.zeros((1, 65)),
        5,
        cv2.GC_INIT_WITH_RECT,
    )
    alpha = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)[y1:y2, x1:x2]
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0)  # soft edge, as a real object's outline
    return photo[y1:y2, x1:x2], alpha


def paste(frame: np.ndarray, pixels: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend an object into the frame, top-left at (x, y), clipped to the frame."""
    h, w = alpha.shape
    fx0, fy0, fx1, fy1 = max(0, x), max(0, y), min(frame.shape[1], x + w), min(frame.shape[0], y + h)
    if fx0 >= fx1 or fy0 >= fy1:
        return
    a = alpha[fy0 - y : fy1 - y, fx0 - x : fx1 - x, None]
    region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    frame[fy0:fy1, fx0:fx1] = (region * (1 - a) + pixels[fy0 - y : fy1 - y, fx0 - x : fx1 - x] * a).astype(
        np.uint8
    )


def gain_at(lighting: list[Lighting], t: float) -> float:
    """Brightness factor at second t: each change ramps linearly from the previous level."""
    gain = 1.0
    for change in sorted(lighting, key=lambda c: c.at):
        if t >= change.at + change.ramp:
            gain = change.gain
        elif t > change.at:
            gain += (change.gain - gain) * (t - change.at) / change.ramp
    return gain


@dataclass
class Prepared:
    """One placement, cut out and scaled, with where it is at any second of the clip."""

    placement: Placement
    pixels: np.ndarray
    alpha: np.ndarray
    outline: tuple[int, int, int, int]  # the object's own outline inside its pasted image
    frame_size: tuple[int, int]  # clip width, height

    def visible(self, t: float) -> bool:
        p = self.placement
        return t >= p.appear and (p.leave is None or t < p.leave)

    def origin(self, t: float) -> tuple[int, int]:
        """Top-left corner of the pasted image at second t (moving objects walk linearly)."""
        p = self.placement
        cx, cy = p.at
        if p.to is not None and p.leave is not None:
            k = min(max((t - p.appear) / (p.leave - p.appear), 0.0), 1.0)
            cx, cy = cx + (p.to[0] - cx) * k, cy + (p.to[1] - cy) * k
        h, w = self.alpha.shape
        return round(cx * self.frame_size[0] - w / 2), round(cy * self.frame_size[1] - h)

    def box(self, t: float) -> list[float]:
        """The object's outline box in the clip at second t, clipped to the frame."""
        x, y = self.origin(t)
        ox0, oy0, ox1, oy1 = self.outline
        width, height = self.frame_size
        return [
            float(min(max(x + ox0, 0), width)),
            float(min(max(y + oy0, 0), height)),
            float(min(max(x + ox1, 0), width)),
            float(min(max(y + oy1, 0), height)),
        ]


def prepare(spec: ScenarioSpec, width: int, height: int) -> list[Prepared]:
    """Cut out and scale every object of the spec for a clip of this size."""
    prepared = []
    for placement in spec.objects:
        pixels, alpha = cut_out(placement.object)
        scale = placement.width / pixels.shape[1]
        size = (placement.width, max(1, round(pixels.shape[0] * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        ys, xs = np.nonzero(alpha > 0.5)  # the object's own outline, not its photo's box
        if len(xs) == 0:
            raise ScenarioError(f"object {placement.name}: nothing left of it after the cut; try cut: box")
        outline = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        prepared.append(Prepared(placement, pixels, alpha, outline, (width, height)))
    return prepared


def _clip_frames(spec: ScenarioSpec, container: av.container.InputContainer):
    """(clip frame index, BGR image) of the background, resampled to the clip's fps."""
    stream = container.streams.video[0]
    src_rate = float(stream.average_rate or spec.fps)
    if spec.fps > src_rate:
        raise ScenarioError(f"fps {spec.fps} is above the background's {src_rate:g}: it cannot be upsampled")
    index = 0
    for i, frame in enumerate(container.decode(stream)):
        if (i / src_rate - spec.start) * spec.fps < index - 0.5:
            continue  # before the start, or between two frames of the clip's lower fps
        if index / spec.fps >= spec.duration:
            break
        yield index, frame.to_ndarray(format="bgr24")
        index += 1


def median_background(spec: ScenarioSpec, samples: int = 40) -> np.ndarray:
    """The footage without its passers-by: the per-pixel median of frames spread over the clip."""
    with av.open(str(spec.background)) as src:
        frames = [image for _, image in _clip_frames(spec, src)]
    if not frames:
        raise ScenarioError(f"{spec.background}: no frames from {spec.start} s")
    picks = np.linspace(0, len(frames) - 1, min(samples, len(frames))).round().astype(int)
    return np.median(np.stack([frames[i] for i in picks]), axis=0).astype(np.uint8)


def passers_by(image: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the footage's moving blobs (people) and the bottom row of each label."""
    diff = cv2.absdiff(image, background).max(axis=2)
    mask = (diff > FOREGROUND_DIFF).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((9, 5), np.uint8))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    bottoms = stats[:, cv2.CC_STAT_TOP] + stats[:, cv2.CC_STAT_HEIGHT]
    bottoms[stats[:, cv2.CC_STAT_AREA] < MIN_PASSER_AREA] = -1  # noise never hides anything
    bottoms[0] = -1  # label 0 is the background
    return labels, bottoms


def background_size(spec: ScenarioSpec) -> tuple[int, int]:
    """Width and height of the background footage, which the clip keeps."""
    with av.open(str(spec.background)) as src:
        ctx = src.streams.video[0].codec_context
        return ctx.width, ctx.height


def render(spec: ScenarioSpec, out: Path, objects: list[Prepared] | None = None) -> dict[str, list[float]]:
    """Write the clip as H.264 MP4; return each object's box (pixels) when it appears."""
    width, height = background_size(spec)
    objects = prepare(spec, width, height) if objects is None else objects
    background = median_background(spec) if any(o.placement.behind_passers_by for o in objects) else None
    index = 0
    with av.open(str(spec.background)) as src, av.open(str(out), "w") as dst:
        enc = dst.add_stream("libx264", rate=spec.fps)
        enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
        enc.options = {"crf": str(spec.crf), "g": str(2 * spec.fps)}
        for index, image in _clip_frames(spec, src):
            t = index / spec.fps
            people = passers_by(image, background) if background is not None else None
            for obj in objects:
                if obj.visible(t):
                    place_object(image, obj, t, people)
            gain = gain_at(spec.lighting, t)
            if gain != 1.0:
                image = np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
            out_frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            out_frame.pts, out_frame.time_base = index, Fraction(1, spec.fps)
            dst.mux(enc.encode(out_frame))
        dst.mux(enc.encode(None))
    if index + 1 < spec.duration * spec.fps - 1:
        raise ScenarioError(f"{spec.background} is too short for {spec.duration} s from {spec.start} s")
    return {o.placement.name: o.box(o.placement.appear) for o in objects}


def place_object(
    image: np.ndarray, obj: Prepared, t: float, people: tuple[np.ndarray, np.ndarray] | None
) -> None:
    """Paste one object; passers-by nearer the camera than its bottom stay in front of it."""
    x, y = obj.origin(t)
    alpha = obj.alpha
    if people is not None and obj.placement.behind_passers_by:
        labels, bottoms = people
        h, w = alpha.shape
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, image.shape[1]), min(y + h, image.shape[0])
        if x0 < x1 and y0 < y1:
            ground = y + obj.outline[3]  # the row where the object touches the ground
            front = bottoms[labels[y0:y1, x0:x1]] > ground
            if front.any():
                alpha = alpha.copy()
                alpha[y0 - y : y1 - y, x0 - x : x1 - x] *= ~front
    paste(image, obj.pixels, alpha, x, y)


def write_truth(
    spec: ScenarioSpec, truth: ScenarioTruth, spec_path: Path, clip: Path, objects: list[Prepared]
) -> Path:
    """The clip's ground-truth file (and its boxes file, for labelled objects) beside the clip."""
    stem = clip.name.split(".")[0]
    settings = truth.model_dump(mode="json", exclude_unset=True, exclude={"incidents"})
    settings["camera"].pop("url", None)
    incidents = []
    for obj in objects:
        incident = obj.placement.to_incident()
        if incident is not None:
            record = incident.model_dump(mode="json", exclude_defaults=True)
            if obj.placement.to is None:  # a still object: where it lies tells it apart
                record["box"] = obj.box(obj.placement.appear)
            incidents.append(record)
    incidents += [inc.model_dump(mode="json", exclude_defaults=True) for inc in truth.incidents]
    data = {"video": clip.name, **settings, "incidents": incidents}
    labelled = [o for o in objects if o.placement.label]
    if labelled:
        boxes_path = clip.with_name(f"{stem}.boxes.json")
        boxes_path.write_text(json.dumps(coco_boxes(spec, labelled), separators=(",", ":")) + "\n")
        data["boxes"] = {"file": boxes_path.name}
    header = (
        f"# Ground truth of {clip.name}, written by `street-vision scenario {spec_path.name}`:\n"
        "# edit the spec and generate again rather than this file.\n"
    )
    truth_path = clip.with_name(f"{stem}.truth.yaml")
    truth_path.write_text(header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
    return truth_path


def coco_boxes(spec: ScenarioSpec, objects: list[Prepared]) -> dict:
    """COCO JSON of the labelled objects on every frame of the clip (frames without them included)."""
    width, height = objects[0].frame_size
    labels = list(dict.fromkeys(o.placement.label for o in objects))
    frames = round(spec.duration * spec.fps)
    images = [
        {"id": i + 1, "file_name": f"frame_{i:06d}.png", "width": width, "height": height}
        for i in range(frames)
    ]
    annotations = []
    for i in range(frames):
        t = i / spec.fps
        for obj in objects:
            if obj.visible(t):
                x1, y1, x2, y2 = obj.box(t)
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": i + 1,
                        "category_id": labels.index(obj.placement.label) + 1,
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "area": (x2 - x1) * (y2 - y1),
                        "iscrowd": 0,
                    }
                )
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(labels)]
    return {"images": images, "annotations": annotations, "categories": categories}


def generate(spec_path: Path, out: Path | None = None) -> tuple[Path, Path]:
    """Render the clip of a spec and write its ground truth; return both paths."""
    spec = load_spec(spec_path)
    if spec.truth is None:
        raise ConfigError(
            [f"{spec_path}: truth: missing: the ground truth needs the camera's zones and rules"]
        )
    if out is None:
        out = spec_path.with_name(spec_path.name.split(".")[0] + ".mp4")
    objects = prepare(spec, *background_size(spec))
    render(spec, out, objects)
    return out, write_truth(spec, spec.truth, spec_path, out, objects)
