"""GStreamer's RTSP server offering H.264 MP4 files as RTSP cameras over TCP only (test and benchmark helper).

Run by the system Python, which has Debian's python3-gi:

- ``/usr/bin/python3 tests/gst_rtsp_server.py PORT CLIP.mp4``: the clip at rtsp://127.0.0.1:PORT/cam
  (the ingest tests start and kill this process);
- ``... PORT --mount NAME FILE [DELAY] --mount ...``: one mount per camera stream, in the same
  process (benchmarks/farm.py: a farm of many cameras). ``DELAY`` seconds hold that mount's
  stream back after PLAY, so that cameras do not all send their keyframes at the same instant.

Each client gets its own pipeline reading the file from its start (``filesrc ! qtdemux ! h264parse
! rtph264pay``: no decoding, no encoding, no relay), paced in real time by the server's clock;
the file ends the stream, so a benchmark serves a file as long as its step.
"""

from __future__ import annotations

import argparse

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def factory(clip: str, delay: float) -> GstRtspServer.RTSPMediaFactory:
    """A mount serving ``clip`` to each client from its start, ``delay`` seconds after PLAY."""
    made = GstRtspServer.RTSPMediaFactory()
    made.set_launch(
        f'( filesrc location="{clip}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )'
    )
    made.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    if delay > 0:
        # a pad offset moves the payloader's output later in running time: the server's sink sends
        # each packet that much later, so the whole stream is shifted, still paced in real time
        offset = int(delay * Gst.SECOND)
        made.connect("media-configure", lambda _, media: _delay(media, offset))
    return made


def _delay(media: GstRtspServer.RTSPMedia, offset: int) -> None:
    media.get_element().get_by_name("pay0").get_static_pad("src").set_offset(offset)


def mounts(text: list[list[str]]) -> list[tuple[str, str, float]]:
    """``--mount NAME FILE [DELAY]`` arguments as (path, file, delay)."""
    out = []
    for values in text:
        if len(values) not in (2, 3):
            raise SystemExit(f"--mount {' '.join(values)}: expected NAME FILE [DELAY]")
        name, clip, delay = values[0], values[1], float(values[2]) if len(values) == 3 else 0.0
        out.append((f"/{name.lstrip('/')}", clip, delay))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port")
    parser.add_argument("clip", nargs="?", help="served at /cam")
    parser.add_argument("--mount", nargs="+", action="append", default=[], metavar="NAME FILE [DELAY]")
    args = parser.parse_args()
    served = mounts(args.mount) + ([("/cam", args.clip, 0.0)] if args.clip else [])
    if not served:
        parser.error("give a CLIP or at least one --mount")
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(args.port)
    points = server.get_mount_points()
    for path, clip, delay in served:
        points.add_factory(path, factory(clip, delay))
    server.attach(None)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
