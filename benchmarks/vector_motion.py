"""Block motion from the codec's motion vectors: the compiled pass against the numpy version it replaced.

Every P-frame a reader decodes for the motion gate has its vectors turned into a grid of 16x16 blocks
(vision/ingest/vectors.py); at 2 detections a second that is every frame of every camera, in the reader
threads, and the numpy version held the GIL throughout (benchmarks/gil_held.md). For the street clips
of the capacity runs (benchmarks/farm.py's encode: 25 fps, GOP 2 s, no B-frames) at the substream's
640x360 and the main stream's 1280x720, this decodes each clip once (slice threads, vectors exported,
as the reader does), keeps every P-frame's vectors, then times each version over all of them
(``--repeat`` passes, the best pass counted: the least disturbed) and checks that every grid is the
same, block for block (NaN-free; infinities included). Results go to vector_motion.md and .json beside
this file. Usage: ``python benchmarks/vector_motion.py [--clips vtest,parking,highway] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.sidedata.sidedata import SideDataContainer
from av.video.frame import PictureType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity import machine  # noqa: E402  (beside this file)
from farm import CLIPS, MAIN, SUB_BITRATE, encode  # noqa: E402  (beside this file)
from report import finish, machine_line  # noqa: E402  (beside this file)

from tests.test_motion_gate import numpy_block_motion  # noqa: E402  (the version before, kept there)
from vision.ingest.vectors import block_motion, export_vectors  # noqa: E402
from vision.kernels import load_kernels  # noqa: E402

SIZES = {"640x360": (640, 360, SUB_BITRATE), "1280x720": MAIN}


def vectors_of(clip: Path) -> tuple[list[np.ndarray], int, int]:
    """Every P-frame's exported vectors (copied out of the frame), and the picture's size."""
    out = []
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        export_vectors(stream)
        for frame in container.decode(stream):
            if frame.pict_type == PictureType.I:
                continue
            side = SideDataContainer(frame).get("MOTION_VECTORS")
            if side is not None:
                out.append(np.array(side.to_ndarray()))
        return out, stream.width, stream.height


def best_pass(fn: Any, frames: list[np.ndarray], width: int, height: int, repeat: int) -> float:
    """Microseconds a frame of ``fn`` over ``frames``, the fastest of ``repeat`` passes."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for vectors in frames:
            fn(vectors, width, height)
        best = min(best, time.perf_counter() - started)
    return 1e6 * best / len(frames)


def measure(name: str, size: str, clip: Path, repeat: int) -> dict[str, Any]:
    frames, width, height = vectors_of(clip)
    same = sum(
        np.array_equal(block_motion(v, width, height), numpy_block_motion(v, width, height)) for v in frames
    )
    numpy_us = best_pass(numpy_block_motion, frames, width, height, repeat)
    compiled_us = best_pass(block_motion, frames, width, height, repeat)
    return {
        "clip": name,
        "size": size,
        "frames": len(frames),
        "vectors_per_frame": round(sum(len(v) for v in frames) / len(frames), 1),
        "grids_equal": same,
        "numpy_us": round(numpy_us, 1),
        "compiled_us": round(compiled_us, 1),
        "speedup": round(numpy_us / compiled_us, 1),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Block motion from motion vectors: compiled against numpy",
        "",
        machine_line(result["machine"], "numpy", "numba", "av"),
        "",
        "Each clip encoded as the capacity farm's streams (H.264 25 fps, GOP 2 s, no B-frames), decoded "
        "once with its vectors exported (slice threads, as the reader decodes); every P-frame's vectors "
        f"timed through each version, best of {result['repeat']} passes, microseconds a frame (one "
        "thread, nothing else running). Grids equal: frames whose grid is the numpy version's, block for "
        "block. At 2 detections a second a reader turns every decoded frame's vectors into a grid: 25 a "
        "second a camera.",
        "",
        "| clip | size | P-frames | vectors a frame | grids equal | numpy µs a frame | compiled µs a frame "
        "| speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['clip']} | {r['size']} | {r['frames']} | {r['vectors_per_frame']} | "
            f"{r['grids_equal']}/{r['frames']} | {r['numpy_us']} | {r['compiled_us']} | {r['speedup']}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", default="vtest,parking,highway", help=f"of {', '.join(CLIPS)}")
    parser.add_argument(
        "--repeat", type=int, default=5, help="passes over each clip's frames; the best counts"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("vector_motion"))
    args = parser.parse_args()
    load_kernels()  # compiled or read from the cache before anything is timed
    result: dict[str, Any] = {
        "machine": machine(),
        "repeat": args.repeat,
        "rows": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.clips.split(","):
            for size, spec in SIZES.items():
                row = measure(name, size, encode(name, Path(tmp), spec), args.repeat)
                result["rows"].append(row)
                print(json.dumps(row), flush=True)
    finish(result)  # the load average after, and whether the machine was busy
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
