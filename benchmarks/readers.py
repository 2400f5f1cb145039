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

With ``--before CHECKOUT`` the readers (``reader``, ``reader-eager``) are measured twice per step, the
other checkout's code (e.g. main) and this one's, each in a child process of its own (its CPU from
/proc, its consumer thread included on both sides) on a farm of its own, in ``--rounds`` rounds, every
other round in the other order: on a shared machine the load moves between steps, and only figures of
the same round compare. The per-packet figures are measured by both sides' code too.

Usage: ``python benchmarks/readers.py [--cameras 16,32,64] [--kinds ffmpeg,pyav,reader-eager,reader]
[--seconds 20] [--warmup 6] [--farm gst,perl] [--clips parking] [--before /path/to/main] [--rounds 2]
[--out readers] [--note ...]``; writes readers.md and readers.json (or ``--out``'s) beside it.
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
CODE_ENV = "READERS_CODE"  # a --before child's: the checkout whose vision it measures
sys.path.insert(0, os.environ.get(CODE_ENV, str(ROOT)))  # before farm.py puts this checkout first

from vision.config import CameraConfig, DecodeConfig, StreamConfig  # noqa: E402
from vision.ingest.decoder import VideoDecoder  # noqa: E402
from vision.ingest.health import HealthMonitor  # noqa: E402
from vision.ingest.reader import CameraReader  # noqa: E402
from vision.secrets import SecretUrl  # noqa: E402

# isort: split
from farm import CLIPS, FARMS, SUB_BITRATE, Client, Farm, encode, process_cpu  # noqa: E402  (beside this file)
from report import caveats, finish  # noqa: E402  (beside this file)

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
        step = summary(kind, len(farm.urls), (clients.cpu() - cpu) / wall, before, clients.progress(), wall)
        return {
            "farm": farm.kind,
            "transport": farm.transport,
            **step,
            "farm_cores": round((farm.cpu_seconds() - farm_cpu) / wall, 3),
            "lag_p50_s": round(float(np.percentile(clients.lags, 50)), 3) if clients.lags else None,
            "lag_p95_s": round(float(np.percentile(clients.lags, 95)), 3) if clients.lags else None,
            "errors": clients.errors(),
        }
    finally:
        clients.close()


def summary(
    kind: str, n: int, cores: float, before: list[float], after: list[float], wall: float
) -> dict[str, Any]:
    """A step's figures: cores, ms per camera-second, and the slowest camera's progress."""
    rates = [(b - a) / wall for a, b in zip(before, after, strict=True)]
    return {
        "kind": kind,
        "cameras": n,
        "cores": round(cores, 3),
        "ms_per_camera_s": round(cores * 1000 / n, 2),
        "slowest": round(min(after), 0) if kind == "ffmpeg" else round(min(rates), 2),
    }


def measure_code(
    farm: Farm, kind: str, warmup: float, seconds: float, extra: dict[str, Any], code: Path
) -> dict[str, Any]:
    """:func:`measure` of a reader kind run by ``code`` (a checkout), in a child process of its own: its
    whole CPU from /proc over the measured time, read when the child says the time starts and ends."""
    command = [sys.executable, __file__, "--child", kind, "--reader", json.dumps(extra)]
    command += ["--child-urls", ",".join(farm.urls), "--child-transport", farm.transport]
    command += ["--warmup", str(warmup), "--seconds", str(seconds)]
    env = os.environ | {CODE_ENV: str(code)}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as child:
        assert child.stdout is not None
        cpu, farm_cpu, start = process_cpu(child.pid), farm.cpu_seconds(), time.monotonic()
        for line in child.stdout:
            if line.startswith("measuring"):
                cpu, farm_cpu, start = process_cpu(child.pid), farm.cpu_seconds(), time.monotonic()
            elif line.startswith("{"):
                wall = time.monotonic() - start
                # the child's CPU as /proc counts it, the same for both sides (its own count: a check)
                cores = (process_cpu(child.pid) - cpu) / wall
                step = json.loads(line)
                step |= summary(kind, len(farm.urls), cores, step.pop("before"), step.pop("after"), wall)
                step["farm_cores"] = round((farm.cpu_seconds() - farm_cpu) / wall, 3)
                child.wait()
                return {"farm": farm.kind, "transport": farm.transport, **step}
    raise RuntimeError(f"{kind} in {code}: the child process ended with {child.returncode}, no result")


def child(
    kind: str, urls: list[str], transport: str, warmup: float, seconds: float, extra: dict[str, Any]
) -> None:
    """A --before run's child: ``kind`` readers of ``urls`` by the code this process imported; says when
    the measured time starts, then prints its progress and lags as one JSON line and exits."""
    clients = Clients(kind, urls, transport, extra)
    try:
        time.sleep(warmup)
        before = clients.progress()
        clients.lags.clear()
        print("measuring", flush=True)
        time.sleep(seconds)
        after = clients.progress()
        lags = list(clients.lags)
        step = {
            "code": os.environ.get(CODE_ENV, str(ROOT)),
            "before": before,
            "after": after,
            "lag_p50_s": round(float(np.percentile(lags, 50)), 3) if lags else None,
            "lag_p95_s": round(float(np.percentile(lags, 95)), 3) if lags else None,
            "errors": clients.errors(),
        }
        print(json.dumps(step), flush=True)
    finally:
        clients.close()


def per_packet(path: Path, repeats: int = 21) -> dict[str, float]:
    """Microseconds of CPU per packet of a substream file read on one thread, no network, no waiting:
    PyAV's demux alone, with its keyframes decoded as ours are, and our :class:`VideoDecoder` loop as a
    keyframes-only reader runs it (a heartbeat for the packets skipped, the live-edge check per
    keyframe), as for a file (``ours``) and with a live stream's settings (``ours_live``: the rest's
    clock read before each read, the heartbeat as often as a live stream's); the median of ``repeats``.
    ours - keyframes is our Python per packet; so is ``ours_live_no_decode`` - demux (every keyframe
    behind the live edge, dropped unseen, none decoded: without the keyframes' decoding, whose
    variance on a loaded machine is larger than what it measures)."""

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

    packets = demux(False)

    def ours(live: bool, behind: float | None = None) -> int:
        monitor = HealthMonitor("cam", str(path), 5.0)
        decode = DecodeConfig(keyframes_only=True, threads=1)
        stream = StreamConfig(read_interval=0.2) if live else None
        with VideoDecoder("cam", SecretUrl(str(path)), decode, stream, monitor.alive) as decoder:
            # the live edge not known (None): no rest, every keyframe decoded; or every packet this far
            # behind it, far more than max_lag: no keyframe decoded either
            decoder.follow_live_edge(lambda _pts, _now: behind, 1.0)
            for _ in decoder.frames():
                pass
        return packets

    out = {}
    runs = {
        "demux": lambda: demux(False),
        "keyframes": lambda: demux(True),
        "ours": lambda: ours(False),
        "ours_live": lambda: ours(True),
        "ours_live_no_decode": lambda: ours(True, 60.0),
    }
    for name, run in runs.items():
        times = []
        for _ in range(repeats):
            start = time.process_time()
            count = run()
            times.append((time.process_time() - start) / count * 1e6)
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
        "measured time (ffmpeg: the processes' from /proc; pyav and reader: this process's, or with a "
        "code column the child process's). "
        "Slowest: pyav the slowest camera's packets/s (25 keeps pace), readers its frames taken per second "
        f"({DETECT_FPS:g} keeps pace), ffmpeg how many processes ran to the end (of the cameras). Lag: "
        "readers' frames, how far behind the live edge each was when taken (the reader's stream clock). "
        "Reader settings over the static camera's: "
        f"{json.dumps(result['extra']) if result['extra'] else 'none'}.",
        "",
        *caveats(result),
    ]
    codes = result.get("codes") or {"": None}
    for code, rounds in (result.get("per_packet_us") or {}).items():
        side = f" by {code}'s code" if code else ""
        us = {k: round(statistics.median(r[k] for r in rounds), 2) for k in rounds[0]}  # the rounds' median
        live = f", with a live stream's settings {us['ours_live']} µs" if "ours_live" in us else ""
        if "ours_live_no_decode" in us:
            live += (
                f"; and with no keyframe decoded (all behind the live edge) {us['ours_live_no_decode']} µs, "
                f"{us['ours_live_no_decode'] - us['demux']:.2f} µs over PyAV's demux"
            )
        lines += [
            f"Per packet{side}, on one thread from the {result['clips'][0]} substream file (no network, no "
            f"waiting), CPU{f', the median of {len(rounds)} rounds' if len(rounds) > 1 else ''}: "
            f"PyAV's demux {us['demux']} µs, "
            f"with its keyframes decoded {us['keyframes']} "
            f"µs, our keyframes-only decoder loop {us['ours']} µs{live} (its Python per packet: the "
            "difference).",
            "",
        ]
    if result.get("codes"):
        lines += [
            "Code: " + "; ".join(f"{name}: {path}" for name, path in codes.items()) + ". Measured by "
            f"both in {result['rounds']} rounds (the first side alternating), the readers each on a farm of "
            "its own.",
            "",
        ]
    if not result["steps"]:  # the per-packet figures alone
        return "\n".join(lines) + "\n"
    column = "| code " if result.get("codes") else ""
    lines += [
        f"| round | farm (transport) | kind {column}| cameras | cores | ms CPU per camera-second "
        "| farm cores | slowest | lag p50 / p95 s | errors (the last of each client, warm-up included) |",
        "|---|---|---|" + ("---|" if column else "") + "---|---|---|---|---|---|---|",
    ]
    for s in result["steps"]:
        lag = f"{s['lag_p50_s']} / {s['lag_p95_s']}" if s.get("lag_p50_s") is not None else "-"
        code = f"| {s.get('side', '-')} " if column else ""
        lines.append(
            f"| {s.get('round', 1)} | {s['farm']} ({s['transport']}) | {s['kind']} {code}| {s['cameras']} | "
            f"{s['cores']} | {s['ms_per_camera_s']} | {s['farm_cores']} | "
            f"{s['slowest']} | {lag} | {'; '.join(s['errors']) or '-'} |"
        )
    if result.get("codes"):
        lines += ["", *comparison(result)]
    return "\n".join(lines) + "\n"


def comparison(result: dict[str, Any]) -> list[str]:
    """Per reader kind and camera count: each side's ms per camera-second, round by round, and after /
    before within each round (the only figures that compare on a shared machine), with the median."""
    lines = [
        "| kind | cameras | before ms per camera-second, by round | after | after / before, by round "
        "| median |",
        "|---|---|---|---|---|---|",
    ]
    keys = sorted({(s["kind"], s["cameras"]) for s in result["steps"] if "side" in s})
    for kind, n in keys:
        rounds: dict[int, dict[str, float]] = {}
        for s in result["steps"]:
            if s.get("side") and (s["kind"], s["cameras"]) == (kind, n):
                rounds.setdefault(s["round"], {})[s["side"]] = s["ms_per_camera_s"]
        pairs = [r for r in rounds.values() if {"before", "after"} <= r.keys()]
        ratios = [r["after"] / r["before"] for r in pairs if r["before"]]
        median = f"{statistics.median(ratios):.2f}" if ratios else "-"
        lines.append(
            f"| {kind} | {n} | {', '.join(str(r['before']) for r in pairs)} | "
            f"{', '.join(str(r['after']) for r in pairs)} | {', '.join(f'{x:.2f}' for x in ratios)} "
            f"| {median} |"
        )
    return lines


def main() -> None:
    from capacity import machine  # beside this file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", default="16,32,64", help="camera counts to step through (none: '')")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"clients to measure, of {', '.join(KINDS)}")
    parser.add_argument("--farm", default="gst", help=f"farms in turn, of {', '.join(FARMS)} (perl: UDP)")
    parser.add_argument("--clips", default="parking", help=f"footage in turn, of {', '.join(CLIPS)}")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per step")
    parser.add_argument("--warmup", type=float, default=6.0, help="start-up, not measured")
    parser.add_argument("--reader", default="{}", help="JSON merged into the reader's camera config")
    parser.add_argument("--before", type=Path, help="a checkout whose readers are measured too (e.g. main)")
    parser.add_argument("--rounds", type=int, default=1, help="with --before: rounds of before and after")
    parser.add_argument("--note", default="", help="a line for the report (e.g. the machine was shared)")
    parser.add_argument("--out", default="readers", help="the report's name, beside this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a --before run's child: the kind it reads
    parser.add_argument("--child-urls", help=argparse.SUPPRESS)
    parser.add_argument("--child-transport", help=argparse.SUPPRESS)
    parser.add_argument("--child-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    extra = json.loads(args.reader)
    if args.child == "per-packet":
        print(json.dumps(per_packet(args.child_file)), flush=True)
        return
    if args.child:
        child(args.child, args.child_urls.split(","), args.child_transport, args.warmup, args.seconds, extra)
        return
    names, kinds, farms = args.clips.split(","), args.kinds.split(","), args.farm.split(",")
    unknown = [n for n in names if n not in CLIPS] + [k for k in kinds if k not in KINDS]
    if unknown := unknown + [f for f in farms if f not in FARMS]:
        parser.error(
            f"unknown {', '.join(unknown)}: clips are {', '.join(CLIPS)}, kinds {', '.join(KINDS)}, "
            f"farms {', '.join(FARMS)}"
        )
    if args.before is not None and not (args.before / "vision" / "ingest" / "reader.py").is_file():
        parser.error(f"--before {args.before}: not a checkout of this project (no vision/ingest/reader.py)")
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout
    checkouts = {"before": args.before.resolve(), "after": ROOT} if args.before else {}
    result: dict[str, Any] = {
        "machine": machine(),
        "ffmpeg": version.split()[2],
        "clips": names,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "extra": extra,
        "note": args.note,
        "codes": {side: described(path) for side, path in checkouts.items()},
        "rounds": args.rounds if checkouts else 1,
        "per_packet_us": {},
        "steps": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        clips = [(name, encode(name, Path(tmp), SUBSTREAM), None) for name in names]
        for round_ in range(1, result["rounds"] + 1):
            for side, code in list(checkouts.items() or {"": None}.items())[:: 1 if round_ % 2 else -1]:
                us = per_packet_by(clips[0][1], code)
                result["per_packet_us"].setdefault(side, []).append(us)
                print(side, json.dumps(us), flush=True)
        for n in (int(x) for x in args.cameras.split(",") if x):  # none: the per-packet figures alone
            for round_ in range(1, result["rounds"] + 1):
                for kind, name in ((k, f) for f in farms for k in kinds):
                    sides: list[tuple[str, Path | None]] = [("", None)]
                    if checkouts and kind.startswith("reader"):
                        sides = list(checkouts.items())[:: 1 if round_ % 2 else -1]
                    elif round_ > 1:
                        continue  # the peers once
                    for side, code in sides:
                        farm = Farm(clips, n, args.warmup + args.seconds + 10, name)
                        try:
                            if code is None:
                                step = measure(farm, kind, args.warmup, args.seconds, extra)
                            else:
                                step = measure_code(farm, kind, args.warmup, args.seconds, extra, code)
                                step["side"] = side
                        finally:
                            farm.close()
                        step["round"] = round_
                        result["steps"].append(step)
                        print(json.dumps(step), flush=True)
    finish(result)
    text = markdown(result)
    here = Path(__file__).resolve().parent
    (here / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    (here / f"{args.out}.md").write_text(text)
    print(text)


def described(checkout: Path) -> str:
    """A checkout as the report names it: its path and commit, and whether it has changes not committed."""
    git = ["git", "-C", str(checkout)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    changed = subprocess.run([*git, "status", "--porcelain", "--", "vision"], capture_output=True, text=True)
    return f"{checkout} at {commit.strip() or '?'}" + (" with changes to vision/" if changed.stdout else "")


def per_packet_by(path: Path, code: Path | None) -> dict[str, float]:
    """:func:`per_packet` by this process's code, or by ``code`` (a checkout) in a child process."""
    if code is None:
        return per_packet(path)
    command = [sys.executable, __file__, "--child", "per-packet", "--child-file", str(path)]
    env = os.environ | {CODE_ENV: str(code)}
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
