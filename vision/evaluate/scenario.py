"""Scenario clips from real pixels: a real background video plus real object cut-outs
that appear, stay and leave at known times, with lighting changes.

Ground truth is exact because the generator places the objects; the pixels stay real
(real footage, real photos), so detectors and background models meet real texture,
real passers-by and real compression. A YAML spec makes every clip reproducible, and
users can build their own from their camera's background.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


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


class Placement(BaseModel):
    """When and where one object lies in the clip."""

    model_config = ConfigDict(extra="forbid")

    name: str
    object: CutOut
    at: tuple[float, float] = Field(description="Bottom-centre of the object, normalized (0..1) in the clip.")
    width: int = Field(gt=2, description="Width of the pasted object in pixels (height keeps the aspect).")
    appear: float = Field(ge=0, description="Second it appears.")
    leave: float | None = Field(None, description="Second it is taken away; None: it stays to the end.")

    @model_validator(mode="after")
    def _order(self) -> Placement:
        if self.leave is not None and self.leave <= self.appear:
            raise ValueError(f"leave ({self.leave}) must be after appear ({self.appear})")
        return self


class Lighting(BaseModel):
    """A change of global brightness, ramped over ``ramp`` seconds."""

    model_config = ConfigDict(extra="forbid")

    at: float = Field(ge=0)
    gain: float = Field(gt=0, le=4)
    ramp: float = Field(1.0, ge=0)


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


def load_spec(path: Path) -> ScenarioSpec:
    """Read a spec; relative paths are relative to its folder."""
    try:
        spec = ScenarioSpec.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: cannot read the scenario: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ScenarioError(f"{path}: {problems}") from None
    base = path.resolve().parent
    spec.background = base / spec.background
    for placement in spec.objects:
        placement.object.image = base / placement.object.image
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


def render(spec: ScenarioSpec, out: Path) -> dict[str, list[float]]:
    """Write the clip as H.264 MP4; return each object's box (pixels) for the ground truth."""
    objects = []
    boxes: dict[str, list[float]] = {}
    with av.open(str(spec.background)) as src:
        stream = src.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        for placement in spec.objects:
            pixels, alpha = cut_out(placement.object)
            scale = placement.width / pixels.shape[1]
            size = (placement.width, max(1, round(pixels.shape[0] * scale)))
            pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
            alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
            x = round(placement.at[0] * width - size[0] / 2)
            y = round(placement.at[1] * height - size[1])
            objects.append((placement, pixels, alpha, x, y))
            ys, xs = np.nonzero(alpha > 0.5)  # the object's own outline, not its photo's box
            boxes[placement.name] = [
                x + int(xs.min()),
                y + int(ys.min()),
                x + int(xs.max()) + 1,
                y + int(ys.max()) + 1,
            ]
        src_rate = float(stream.average_rate or spec.fps)
        if spec.fps > src_rate:
            raise ScenarioError(
                f"fps {spec.fps} is above the background's {src_rate:g}: it cannot be upsampled"
            )
        with av.open(str(out), "w") as dst:
            enc = dst.add_stream("libx264", rate=spec.fps)
            enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
            enc.options = {"crf": str(spec.crf), "g": str(2 * spec.fps)}
            index = 0
            for i, frame in enumerate(src.decode(stream)):
                if (i / src_rate - spec.start) * spec.fps < index - 0.5:
                    continue  # before the start, or between two frames of the clip's lower fps
                t = index / spec.fps
                if t >= spec.duration:
                    break
                image = frame.to_ndarray(format="bgr24")
                for placement, pixels, alpha, x, y in objects:
                    if t >= placement.appear and (placement.leave is None or t < placement.leave):
                        paste(image, pixels, alpha, x, y)
                gain = gain_at(spec.lighting, t)
                if gain != 1.0:
                    image = np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
                out_frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                out_frame.pts, out_frame.time_base = index, Fraction(1, spec.fps)
                dst.mux(enc.encode(out_frame))
                index += 1
            dst.mux(enc.encode(None))
    if index < spec.duration * spec.fps - 1:
        raise ScenarioError(f"{spec.background} is too short for {spec.duration} s from {spec.start} s")
    return boxes
