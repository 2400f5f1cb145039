"""Rebuild ``plaza.mp4`` from OpenCV's pedestrian sample (``vtest.avi``).

The product ships this clip so the README's first command runs on real footage
without anything else on disk; the script keeps the cut reproducible.
Usage: ``python sample_videos/make_plaza.py [SOURCE] [OUT]``.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parent.parent / "shared" / "data" / "footage" / "vtest.avi"
SECONDS = 40
FPS = 10
CRF = 28


def cut(source: Path, out_path: Path) -> None:
    """Re-encode the first ``SECONDS`` of ``source`` as H.264 (yuv420p, +faststart)."""
    with av.open(str(source)) as src, av.open(str(out_path), "w", options={"movflags": "+faststart"}) as dst:
        decoded = src.streams.video[0]
        stream = dst.add_stream("libx264", rate=FPS)
        stream.width = decoded.codec_context.width
        stream.height = decoded.codec_context.height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(CRF), "preset": "slow", "g": str(2 * FPS)}
        for index, frame in enumerate(src.decode(video=0)):
            if index >= SECONDS * FPS:
                break
            image = frame.to_ndarray(format="rgb24")
            out = av.VideoFrame.from_ndarray(image, format="rgb24")
            out.pts = index
            out.time_base = Fraction(1, FPS)
            dst.mux(stream.encode(out))
        dst.mux(stream.encode(None))


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    out_path = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "plaza.mp4"
    cut(source, out_path)
    print(f"wrote {out_path} ({out_path.stat().st_size} bytes)")
