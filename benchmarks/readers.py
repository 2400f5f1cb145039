"""What reading a camera costs: our reader against a bare PyAV demux loop and ffmpeg's own floor.

Issue 16's static cameras (keyframes only, 0.5 detections/s) spend most of their reading CPU in
``container.demux()``: every RTP packet of 25 frames a second is read and handed to Python to
find the one keyframe in 50 worth decoding. This measures where that CPU goes, per camera, on
N cameras of the GStreamer farm (benchmarks/farm.py: one process, a mount per camera, TCP; or with
``--farm perl`` its UDP relay, one ffmpeg publisher per camera),
each camera a 640x360 substream (H.264 25 fps, GOP 2 s, 512 kb/s), one kind of client at a time:

- ``ffmpeg``: the floor, libavformat alone with no Python: one ``ffmpeg -rtsp_transport tcp -i URL
  -c copy -f null -`` process per camera, their CPU read from /proc;
- ``pyav``: a bare PyAV loop per camera on its own thread in this process (farm.py's demux-only
  client: every packet read, none decoded, FFmpeg's socket timeout);
- ``reader``: ours, vision/ingest's :class:`CameraReader` per camera as the pipeline runs a static
  camera (keyframes only, detect_fps 0.5), its frames taken by one consumer thread and dropped;
  it reads in bursts, resting ``stream.read_interval`` (its default: 0.2 s) at the live edge;
- ``reader-eager``: the same reading each packet as it comes (``read_interval: 0``, as before).

Per kind and N: the clients' cores (this process's CPU, or the ffmpeg processes', over the measured
seconds), that per camera in ms per second, the farm's cores (the same farm for every kind: a check
that it kept pace), and progress: the slowest camera's packets (pyav) or keyframes (reader) per
second, or how many ffmpeg processes still ran at the end. pyav - ffmpeg is PyAV's and Python's
per-packet cost; reader-eager - pyav is ours (the per-packet checks, decoding keyframes, the
hand-over); reader against reader-eager is what resting between bursts saves.

Usage: ``python benchmarks/readers.py [--cameras 16,32,64] [--kinds ffmpeg,pyav,reader-eager,reader]
[--seconds 20] [--warmup 6] [--farm gst,perl] [--clips parking] [--note ...]``; writes readers.md and
readers.json beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from farm import CLIPS, FARMS, SUB_BITRATE, Client, Farm, encode, process_cpu  # noqa: E402  (beside this file)

from vision.config import CameraConfig, DecodeConfig  # noqa: E402
from vision.ingest.decoder import VideoDecoder  # noqa: E402
from vision.ingest.health import HealthMonitor  # noqa: E402
from vision.ingest.reader import CameraReader  # noqa: E402
from vision.secrets import SecretUrl  # noqa: E402

SUBSTREAM = (640, 360, SUB_BITRATE)
KINDS = ("ffmpeg", "pyav", "reader-eager", "reader")
DETECT_FPS = 0.5  # a static camera's


class Clients:
    """N clients of one kind reading the farm's cameras until :meth:`close`."""

    def __init__(self, kind: str, urls: list[str], transport: str, extra: dict[str, Any]) -> None:
        self.kind = kind
        self.stop = threading.Event()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.pyav: list[Client] = []
        self.readers: list[CameraReader] = []
        self.taken: list[int] = [0] * len(urls)
        self.lags: list[float] = []  # readers: seconds each frame taken was behind the live edge
        if kind == "ffmpeg":
            self.procs = [
                subprocess.Popen(
                    [
                        *("ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", transport, "-i", url),
                        *("-c", "copy", "-f", "null", "-"),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                )
                for url in urls
            ]
        elif kind == "pyav":
            self.pyav = [Client(url, transport, self.stop) for url in urls]
        elif kind.startswith("reader"):
            settings = {"detect_fps": DETECT_FPS, "decode": {"keyframes_only": True}} | extra
            settings["stream"] = {"transport": transport, **extra.get("stream", {})}
            if kind == "reader-eager":
                settings["stream"]["read_interval"] = 0.0
            ready = threading.Event()
            self.readers = [
                CameraReader(
                    f"cam{i}", CameraConfig.model_validate({"url": url, **settings}), ready, len(urls)
                )
                for i, url in enumerate(urls)
            ]
            for reader in self.readers:
                reader.start()
            self.consumer = threading.Thread(target=self._consume, args=(ready,), daemon=True)
            self.consumer.start()
        else:
            raise ValueError(f"kind {kind!r}: known kinds are {', '.join(KINDS)}")

    def _consume(self, ready: threading.Event) -> None:
        """Take every reader's frames as the pipeline would, and drop them."""
        while not self.stop.is_set():
            ready.clear()
            for i, reader in enumerate(self.readers):
                if (frame := reader.take(0.0)) is not None:
                    self.taken[i] += 1
                    self.lags.append(reader.clock.lag(frame.pts, time.monotonic()))
            ready.wait(0.2)

    def cpu(self) -> float:
        """CPU seconds the clients used so far (this process's for the in-process kinds)."""
        if self.procs:
            return sum(process_cpu(p.pid) for p in self.procs)
        return time.process_time()

    def progress(self) -> list[float]:
        """Per camera: packets (pyav), frames taken (reader) or whether its ffmpeg still runs (1/0)."""
        if self.procs:
            return [float(p.poll() is None) for p in self.procs]
        if self.pyav:
            return [float(c.packets) for c in self.pyav]
        return [float(n) for n in self.taken]

    def errors(self) -> list[str]:
        if self.pyav:
            return sorted({c.error for c in self.pyav if c.error})
        return sorted({h.last_error for h in (r.health() for r in self.readers) if h.last_error})

    def close(self) -> None:
        self.stop.set()
        for reader in self.readers:
            reader.stop()
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for reader in self.readers:
            reader.join(5)


def measure(farm: Farm, kind: str, warmup: float, seconds: float, extra: dict[str, Any]) -> dict[str, Any]:
    """One kind of client on every camera of ``farm``: cores, per camera, and progress in ``seconds``."""
    clients = Clients(kind, farm.urls, farm.transport, extra)
    try:
        time.sleep(warmup)
        cpu, farm_cpu, before, start = clients.cpu(), farm.cpu_seconds(), clients.progress(), time.monotonic()
        clients.lags.clear()
        time.sleep(seconds)
        wall = time.monotonic() - start
        cores = (clients.cpu() - cpu) / wall
        after = clients.progress()
        rates = [(b - a) / wall for a, b in zip(before, after, strict=True)]
        n = len(farm.urls)
        return {
            "farm": farm.kind,
            "transport": farm.transport,
            "kind": kind,
            "cameras": n,
            "cores": round(cores, 3),
            "ms_per_camera_s": round(cores * 1000 / n, 2),
            "farm_cores": round((farm.cpu_seconds() - farm_cpu) / wall, 3),
            "slowest": round(min(after), 0) if kind == "ffmpeg" else round(min(rates), 2),
            "lag_p50_s": round(float(np.percentile(clients.lags, 50)), 3) if clients.lags else None,
            "lag_p95_s": round(float(np.percentile(clients.lags, 95)), 3) if clients.lags else None,
            "errors": clients.errors(),
        }
    finally:
        clients.close()


def per_packet(path: Path, repeats: int = 3) -> dict[str, float]:
    """Microseconds of CPU per packet of a substream file read on one thread, no network, no waiting:
    PyAV's demux alone, with its keyframes decoded as ours are, and our :class:`VideoDecoder` loop as a
    live keyframes-only reader runs it (a heartbeat per skipped packet, the live-edge check per
    keyframe); the median of ``repeats``. ours - keyframes is our Python per packet."""

    def demux(keyframes: bool) -> int:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type, stream.codec_context.thread_count = "SLICE", 1
            stream.codec_context.skip_frame = "NONKEY"
            packets = 0
            for packet in container.demux():
                packets += 1
                if keyframes and packet.is_keyframe:
                    stream.decode(packet)
            return packets

    def ours() -> int:
        monitor = HealthMonitor("cam", str(path), 5.0)
        skipped = 0

        def beat(at: float) -> None:  # a packet skipped (not a keyframe): the reader's heartbeat
            nonlocal skipped
            skipped += 1
            monitor.alive(at)

        decode = DecodeConfig(keyframes_only=True, threads=1)
        with VideoDecoder("cam", SecretUrl(str(path)), decode, heartbeat=beat) as decoder:
            decoder.follow_live_edge(lambda _pts, _now: 0.0, 1.0)
            keyframes = sum(1 for _ in decoder.frames())
        return skipped + keyframes  # a video-only file: every packet is one or the other

    out = {}
    for name, run in (("demux", lambda: demux(False)), ("keyframes", lambda: demux(True)), ("ours", ours)):
        times = []
        for _ in range(repeats):
            start = time.process_time()
            packets = run()
            times.append((time.process_time() - start) / packets * 1e6)
        out[name] = round(statistics.median(times), 2)
    return out


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# What reading a camera costs",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['system']}; PyAV {m['versions']['av']} "
        "(its own FFmpeg), "
        f"ffmpeg CLI {result['ffmpeg']}; load average {m['load_average_before']} before, "
        f"{m['load_average_after']} after.",
        "",
        f"Clips {', '.join(result['clips'])} in turn as 640x360 H.264 25 fps GOP 2 s {SUB_BITRATE}b/s "
        "substreams on the farms of benchmarks/farm.py (gst: one GStreamer process, TCP; perl: a relay "
        "and an ffmpeg publisher per camera, UDP), one kind of client at a time, "
        f"{result['warmup']:g} s warm-up, {result['seconds']:g} s measured. Cores: the clients' CPU over the "
        "measured time (ffmpeg: the processes' from /proc; pyav and reader: this process's). "
        "Slowest: pyav the slowest camera's packets/s (25 keeps pace), readers its frames taken per second "
        f"({DETECT_FPS:g} keeps pace), ffmpeg how many processes ran to the end (of the cameras). Lag: "
        "readers' frames, how far behind the live edge each was when taken (the reader's stream clock). "
        "Reader settings over the static camera's: "
        f"{json.dumps(result['extra']) if result['extra'] else 'none'}.",
        "",
    ]
    if result.get("note"):
        lines += [f"**{result['note']}**", ""]
    if us := result.get("per_packet_us"):
        lines += [
            f"Per packet, on one thread from the {result['clips'][0]} substream file (no network, no "
            f"waiting), CPU: PyAV's demux {us['demux']} µs, with its keyframes decoded {us['keyframes']} "
            f"µs, our keyframes-only decoder loop {us['ours']} µs (its Python per packet: the difference).",
            "",
        ]
    lines += [
        "| farm (transport) | kind | cameras | cores | ms CPU per camera-second | farm cores | slowest "
        "| lag p50 / p95 s | errors (the last of each client, warm-up included) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result["steps"]:
        lag = f"{s['lag_p50_s']} / {s['lag_p95_s']}" if s.get("lag_p50_s") is not None else "-"
        lines.append(
            f"| {s['farm']} ({s['transport']}) | {s['kind']} | {s['cameras']} | {s['cores']} | "
            f"{s['ms_per_camera_s']} | {s['farm_cores']} | "
            f"{s['slowest']} | {lag} | {'; '.join(s['errors']) or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    from capacity import machine  # beside this file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", default="16,32,64", help="camera counts to step through")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"clients to measure, of {', '.join(KINDS)}")
    parser.add_argument("--farm", default="gst", help=f"farms in turn, of {', '.join(FARMS)} (perl: UDP)")
    parser.add_argument("--clips", default="parking", help=f"footage in turn, of {', '.join(CLIPS)}")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per step")
    parser.add_argument("--warmup", type=float, default=6.0, help="start-up, not measured")
    parser.add_argument("--reader", default="{}", help="JSON merged into the reader's camera config")
    parser.add_argument("--note", default="", help="a line for the report (e.g. the machine was shared)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("readers"))
    args = parser.parse_args()
    names, kinds, farms = args.clips.split(","), args.kinds.split(","), args.farm.split(",")
    unknown = [n for n in names if n not in CLIPS] + [k for k in kinds if k not in KINDS]
    if unknown := unknown + [f for f in farms if f not in FARMS]:
        parser.error(
            f"unknown {', '.join(unknown)}: clips are {', '.join(CLIPS)}, kinds {', '.join(KINDS)}, "
            f"farms {', '.join(FARMS)}"
        )
    extra = json.loads(args.reader)
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = {
        "machine": machine(),
        "ffmpeg": version.split()[2],
        "clips": names,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "extra": extra,
        "note": args.note,
        "steps": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        clips = [(name, encode(name, Path(tmp), SUBSTREAM), None) for name in names]
        result["per_packet_us"] = per_packet(clips[0][1])
        print(json.dumps(result["per_packet_us"]), flush=True)
        for n in (int(x) for x in args.cameras.split(",")):
            for kind, name in ((k, f) for f in farms for k in kinds):
                farm = Farm(clips, n, args.warmup + args.seconds + 10, name)
                try:
                    step = measure(farm, kind, args.warmup, args.seconds, extra)
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
