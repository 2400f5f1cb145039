"""The capacity benchmarks' camera farm: N real RTSP cameras on loopback, and what the farm itself costs.

Real footage is encoded once per clip to 1280x720 H.264 at 25 fps, one keyframe every 2 s, no
B-frames, as a camera's main stream (:func:`encode`; a substream the same at its own size). Two farms:

- ``gst`` (the default): one process, GStreamer's RTSP server (tests/gst_rtsp_server.py), serving a
  mount per camera stream straight from the files (demux and RTP packetising only: no relay, no
  process per camera), paced in real time, over TCP. The clip is copied once, looped (``-c copy``),
  into a file as long as a step, so every client plays it to the end of its step. Camera i's
  streams start i/N of a GOP late, so the cameras' keyframes are spread over the GOP as real
  cameras' are, not sent by all at the same instant. With ``phases`` K (``capacity.py --phases``),
  the cameras of a clip play it from K starting points spread over it in turn (the clip rotated at
  a keyframe), so their scenes do not all change in the same second, as where a looped clip starts
  over.
- ``perl``: the farm before: Debian's rtsp-server-perl relay (UDP only) and one
  ``ffmpeg -re -stream_loop -1 -c copy`` publisher per camera stream, all cameras' keyframes
  within the second the publishers started in.
- ``http``: for a machine with no RTSP server (the device tool's GPU machine): each stream as MPEG-TS
  over HTTP, remuxed from the files in real time and looped by a few Python processes
  (benchmarks/farm_http.py), camera i's playback i/N of a GOP late as on ``gst``.

Run as a script, it measures the farms alone: N cameras, each read by a demux-only client in this
process (PyAV reads and demuxes every packet, decodes none, as a keyframes-only reader does), and
per farm and N: the farm's CPU (cores, of the measured ``--seconds``), the packets per second the
slowest client got (25 when the farm keeps pace) and how far the most-behind client's packets
came after their moment at the live edge by the end (arrival - PTS, less its smallest value:
growing when the farm falls behind real time). Results go to farm.md and farm.json beside this
file. Usage: ``python benchmarks/farm.py [--farm gst,perl] [--cameras 32,64,100] [--clips parking]
[--seconds 30] [--warmup 8]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from farm_http import HttpTs  # noqa: E402  (beside this file)

from tests.ingest_servers import GstRtsp, PerlRtsp  # noqa: E402

FOOTAGE = ROOT.parent / "shared" / "data" / "footage"
CLIPS = {
    "plaza": ROOT / "sample_videos" / "plaza.mp4",
    "vtest": FOOTAGE / "vtest.avi",
    "parking": FOOTAGE / "parking_lane_topdown_intel.mp4",
    "highway": FOOTAGE / "highway_overpass_jitter_boofcv.mp4",
}
MAIN = (1280, 720, "2M")  # a camera's main stream: width, height, bitrate
SUB_BITRATE = "512k"  # a 640x360 substream's, as IP cameras ship them
GOP = 2.0  # seconds between keyframes of every stream the farm serves
FARMS = ("gst", "perl", "http")
READ_TIMEOUT_US = 10_000_000  # a client's socket read timeout
Clips = list[tuple[str, Path, Path | None]]  # per clip: its name, main stream file, substream file or None


def encode(name: str, folder: Path, size: tuple[int, int, str] = MAIN) -> Path:
    """A clip as one of a camera's streams at ``size`` (width, height, bitrate): H.264, 25 fps, GOP 2 s,
    no B-frames; encoded once: a file of that name already in ``folder`` is taken as it is (capacity.py
    ``--clips-dir``, for a machine with neither ffmpeg nor the footage)."""
    width, height, bitrate = size
    out = folder / f"{name}{width}x{height}_{bitrate}.mp4"
    if out.is_file():
        return out
    clip = CLIPS[name]
    if not clip.is_file():
        raise SystemExit(f"--clips {name}: {clip} is missing (the shared footage sits beside the repository)")
    part = out.with_suffix(".part.mp4")
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y", "-i", str(clip), "-an"),
            *("-vf", f"scale={width}:{height},fps=25", "-c:v", "libx264", "-preset", "veryfast"),
            *("-g", f"{GOP * 25:.0f}", "-bf", "0", "-b:v", bitrate, str(part)),
        ],
        check=True,
    )
    return part.replace(out)  # whole or not at all: a file there is taken as encoded


def duration(clip: Path) -> float:
    """A file's length in seconds (its container's)."""
    return float(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(clip)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )


def rotated(clip: Path, start: float) -> Path:
    """``clip`` copied (no encoding) from ``start`` (a keyframe: a whole number of GOPs) to its end, then
    from its beginning to ``start``, beside it: the same footage, another camera's moment of it."""
    if start <= 0:
        return clip
    out = clip.with_name(f"{clip.stem}_from{start:g}.mp4")
    if not out.exists():
        parts = clip.with_name(f"{out.stem}.txt")
        parts.write_text(f"file '{clip}'\ninpoint {start}\nfile '{clip}'\noutpoint {start}\n")
        subprocess.run(
            [
                *("ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(parts)),
                *("-c", "copy", str(out)),
            ],
            check=True,
        )
    return out


def looped(clip: Path, seconds: float) -> Path:
    """``clip`` copied (no encoding) end to end into one file at least ``seconds`` long, beside it."""
    loops = max(0, int(seconds // duration(clip)))  # -stream_loop: how many times more than once
    out = clip.with_name(f"{clip.stem}_x{loops + 1}.mp4")
    if not out.exists():
        subprocess.run(
            [
                *("ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops), "-i", str(clip)),
                *("-c", "copy", str(out)),
            ],
            check=True,
        )
    return out


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Farm:
    """N loopback RTSP cameras serving the clips in turn: camera i's main stream at ``urls[i]``, and
    what it is detected on (its substream where the clips have one) at ``detect_urls[i]``; the RTSP
    ``transport`` its server speaks. ``seconds``: how long one client must be able to play
    (the ``gst`` farm's files are that long; the ``perl`` farm loops for ever).

    ``phases`` (``gst`` only): the cameras of a clip play it from that many starting
    points spread over it (whole GOPs) in turn, so they do not all show the same moment: with
    one, every camera of a clip shows it at most a GOP apart, and where a looped clip starts over
    every scene jumps in the same second.

    ``processes`` (``http`` only): the server processes the streams are shared by. ``spread`` (``http``
    only): camera i's playback starts i/N of a GOP late; False for a client that opens the streams one
    after another (it spreads them itself, and the delays would add N/2 GOPs to its start-up)."""

    def __init__(
        self,
        clips: Clips,
        cameras: int,
        seconds: float,
        kind: str = "gst",
        phases: int = 1,
        processes: int = 4,
        spread: bool = True,
    ) -> None:
        self.kind = kind
        self.kinds = [clips[i % len(clips)][0] for i in range(cameras)]
        streams = [
            (name, path, i)
            for i in range(cameras)
            for name, path in (
                (f"cam{i}", clips[i % len(clips)][1]),
                (f"cam{i}sub", clips[i % len(clips)][2]),
            )
            if path is not None
        ]
        if phases > 1 and kind != "gst":
            raise ValueError(f"phases {phases}: only the gst farm plays clips from other starting points")
        if kind == "gst":
            self.transport = "tcp"
            starts = {path: self.starts(path, phases) for _, path, _ in streams}
            files = {  # once per clip and starting point, not per camera
                (path, start): looped(rotated(path, start), seconds)
                for path, points in starts.items()
                for start in points
            }
            mounts = [
                (name, files[path, starts[path][i // len(clips) % phases]], GOP * i / cameras)
                for name, path, i in streams
            ]
            self.server: GstRtsp | PerlRtsp | HttpTs = GstRtsp(mounts).start()
        elif kind == "http":
            self.transport = "tcp"  # what the RTSP option says; an http URL has no other
            delay = GOP / cameras if spread else 0.0
            self.server = HttpTs([(name, path, delay * i) for name, path, i in streams], processes)
            self.server.start()
        elif kind == "perl":
            self.transport = "udp"
            self.server = PerlRtsp().start()
            try:
                for name, path, _ in streams:
                    self.server.publish(name, video=path, copy=True)
            except BaseException:
                self.server.close()
                raise
        else:
            raise ValueError(f"farm {kind!r}: known farms are {', '.join(FARMS)}")
        self.urls = [self.server.url(f"cam{i}") for i in range(cameras)]
        self.detect_urls = [
            self.server.url(f"cam{i}sub" if clips[i % len(clips)][2] else f"cam{i}") for i in range(cameras)
        ]

    @staticmethod
    def starts(clip: Path, phases: int) -> list[float]:
        """``phases`` starting points spread evenly over ``clip``, each at a keyframe (a whole GOP)."""
        gops = max(1, int(duration(clip) // GOP))
        return [GOP * (k * gops // phases) for k in range(phases)]

    def cpu_seconds(self) -> float:
        """CPU time the farm (its server, and any publishers) has used so far."""
        if isinstance(self.server, GstRtsp):
            procs = [self.server.proc]
        elif isinstance(self.server, HttpTs):
            procs = self.server.procs
        else:
            procs = [self.server.server, *self.server.publishers.values()]
        return sum(process_cpu(p.pid) for p in procs if p is not None)

    def close(self) -> None:
        self.server.close()


class Client:
    """A demux-only reader of one stream on its own thread: packets received, and by how much the
    newest came after its moment at the live edge (arrival - PTS, less the smallest seen)."""

    def __init__(self, url: str, transport: str, stop: threading.Event) -> None:
        self.url, self.transport, self.stop = url, transport, stop
        self.packets = 0
        self.edge: float | None = None  # smallest arrival - PTS
        self.behind = 0.0  # the newest packet's arrival - PTS, less the edge
        self.error: str | None = None
        self.ended = False  # the server ended the stream before the client stopped
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            # FFmpeg's socket timeout, not PyAV's read timeout: PyAV's is a callback that takes the GIL each
            # time FFmpeg checks it (PyAV #1112), which with 100 clients costs more than their reading
            options = {"rtsp_transport": self.transport, "timeout": str(READ_TIMEOUT_US)}
            with av.open(self.url, options=options, timeout=(15, None)) as container:
                stream = container.streams.video[0]
                for packet in container.demux(stream):
                    if self.stop.is_set():
                        return
                    if packet.pts is None or not stream.time_base:
                        continue
                    self.packets += 1
                    late = time.monotonic() - float(packet.pts * stream.time_base)
                    self.edge = late if self.edge is None else min(self.edge, late)
                    self.behind = late - self.edge
                self.ended = True
        except (av.FFmpegError, OSError) as exc:
            self.error = str(exc)


def measure(farm: Farm, warmup: float, seconds: float) -> dict[str, Any]:
    """The farm with one client per camera main stream: its cores, the slowest client's packets per
    second and the most-behind client's lag, in ``seconds`` after ``warmup``."""
    stop = threading.Event()
    clients = [Client(url, farm.transport, stop) for url in farm.urls]
    try:
        time.sleep(warmup)
        packets, cpu, start = [c.packets for c in clients], farm.cpu_seconds(), time.monotonic()
        own = time.process_time()
        time.sleep(seconds)
        wall = time.monotonic() - start
        farm_cores = (farm.cpu_seconds() - cpu) / wall
        rates = [(c.packets - before) / wall for c, before in zip(clients, packets, strict=True)]
        errors = sorted({c.error for c in clients if c.error})
        return {
            "cameras": len(clients),
            "farm_cores": round(farm_cores, 3),
            "clients_cores": round((time.process_time() - own) / wall, 2),
            "min_packets_per_s": round(min(rates), 1),
            "max_behind_s": round(max(c.behind for c in clients), 2),
            "ended": sum(c.ended for c in clients),
            "errors": errors,
        }
    finally:
        stop.set()


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# The capacity farm's own cost",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['system']}; load average {m['load_average_before']} "
        f"before, {m['load_average_after']} after.",
        "",
        f"Clips {', '.join(result['clips'])} in turn as 720p H.264 25 fps GOP 2 s main streams; one "
        "demux-only client per camera in one process (PyAV, every packet, nothing decoded); "
        f"{result['warmup']:g} s warm-up, {result['seconds']:g} s measured. Farm cores: the farm's CPU "
        "(its server and publishers) over the measured time. Slowest client: packets per second (25: "
        "keeps pace). Most behind: the newest packet's arrival - PTS, less its smallest, at the end "
        "(grows when the farm falls behind real time). Streams ended: by the server, before the end. "
        "gst: tests/gst_rtsp_server.py, one process "
        "serving every mount from the files (TCP); perl: rtsp-server-perl and one `ffmpeg -re -c copy` "
        "publisher per camera (UDP); http: benchmarks/farm_http.py, MPEG-TS over HTTP remuxed from the "
        "files by 4 Python processes, each client its own playback.",
        "",
    ]
    if result.get("note"):
        lines += [f"**{result['note']}**", ""]
    lines += [
        "| farm | cameras | farm cores | clients' cores | slowest client packets/s | most behind s "
        "| streams ended | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for step in result["steps"]:
        lines.append(
            f"| {step['farm']} | {step['cameras']} | {step['farm_cores']} | {step['clients_cores']} | "
            f"{step['min_packets_per_s']} | {step['max_behind_s']} | {step.get('ended', '-')} | "
            f"{'; '.join(step['errors']) or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    from capacity import machine  # here, not above: capacity imports this module

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--farm", default=",".join(FARMS), help=f"farms to measure, of {', '.join(FARMS)}")
    parser.add_argument("--cameras", default="32,64,100", help="camera counts to step through")
    parser.add_argument("--clips", default="parking", help=f"footage in turn, of {', '.join(CLIPS)}")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time per step")
    parser.add_argument("--warmup", type=float, default=8.0, help="start-up, not measured")
    parser.add_argument("--note", default="", help="a line for the report (e.g. the machine was shared)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("farm"))
    args = parser.parse_args()
    names, farms = args.clips.split(","), args.farm.split(",")
    if unknown := [name for name in names if name not in CLIPS] + [f for f in farms if f not in FARMS]:
        parser.error(f"unknown {', '.join(unknown)}: clips are {', '.join(CLIPS)}, farms {', '.join(FARMS)}")
    result: dict[str, Any] = {
        "machine": machine(),
        "clips": names,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "note": args.note,
        "steps": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        clips: Clips = [(name, encode(name, Path(tmp)), None) for name in names]
        for n in (int(x) for x in args.cameras.split(",")):
            for kind in farms:
                farm = Farm(clips, n, args.warmup + args.seconds + 10, kind)
                try:
                    step = {"farm": kind, **measure(farm, args.warmup, args.seconds)}
                finally:
                    farm.close()
                result["steps"].append(step)
                print(json.dumps(step), flush=True)
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
