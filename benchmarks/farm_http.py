"""The capacity farm over HTTP: every camera stream as MPEG-TS over HTTP on 127.0.0.1, for machines with
no RTSP server.

The device tool's GPU machine has Python and PyAV (carried as a wheel) but neither GStreamer nor
rtsp-server-perl, and nothing can be installed there; a stream over HTTP is what many cameras and
relays also offer, and both ours (PyAV) and the peer (OpenCV's FFmpeg) read it. Each client gets its own
playback of its mount's file from the start: the H.264 packets remuxed as they are (no coding) into
MPEG-TS, paced in real time by their timestamps like ``ffmpeg -re``, looped for ever with timestamps
that keep rising, written as they come due (the muxer flushes each packet, so nothing waits in a
buffer). A mount's playback starts its ``delay`` late, so the cameras' keyframes are spread over the GOP
as farm.Farm spreads them on the RTSP farms. The mounts are shared among ``processes`` server
processes, so the farm's GIL is not one more limit on a machine with many cores.

Run as a script, it serves ``--mount NAME FILE DELAY`` (repeatable) on a port until it is killed.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ingest_servers import _kill, _start, free_port, wait_for_port  # noqa: E402

Mount = tuple[str, Path, float]  # its name in the URL, its H.264 file, seconds its playback starts late
SERVER = Path(__file__)


class HttpTs:
    """``processes`` server processes of this script on 127.0.0.1 sharing ``mounts`` among them, a
    mount's URL by its name."""

    def __init__(self, mounts: list[Mount], processes: int = 1) -> None:
        self.mounts = mounts
        self.processes = max(1, min(processes, len(mounts)))
        self.ports = [free_port() for _ in range(self.processes)]
        self.port_of = {name: self.ports[i % self.processes] for i, (name, _, _) in enumerate(mounts)}
        self.procs: list[subprocess.Popen[bytes]] = []

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port_of[name]}/{name}"

    def start(self) -> HttpTs:
        try:
            for k, port in enumerate(self.ports):
                mine = self.mounts[k :: self.processes]
                args = [arg for name, path, delay in mine for arg in ("--mount", name, str(path), str(delay))]
                self.procs.append(_start([sys.executable, str(SERVER), str(port), *args]))
            for port in self.ports:
                wait_for_port(port)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for proc in self.procs:
            _kill(proc)


def play(path: Path, delay: float, out: BinaryIO) -> None:
    """``path``'s video packets to ``out`` as MPEG-TS in real time, from its start ``delay`` late, looped
    until the client goes away (the write fails)."""
    time.sleep(delay)
    started = time.monotonic()
    looped = 0  # ticks of the clip played before this loop
    # flush_packets: each packet goes to the socket as it is muxed, not after 32 KB of buffer
    with av.open(out, "w", format="mpegts", options={"flush_packets": "1"}) as muxer:
        target = None
        while True:
            with av.open(str(path)) as source:
                stream = source.streams.video[0]
                if target is None:
                    target = muxer.add_stream_from_template(stream)
                first, end = None, 0
                for packet in source.demux(stream):
                    if packet.pts is None or packet.dts is None:
                        continue  # the demuxer's empty packet at the end
                    first = packet.dts if first is None else first
                    end = max(end, packet.pts + (packet.duration or 0))
                    due = started + float((looped + packet.dts - first) * stream.time_base)
                    if (wait := due - time.monotonic()) > 0:
                        time.sleep(wait)
                    packet.pts += looped - first
                    packet.dts += looped - first
                    packet.stream = target
                    muxer.mux(packet)
                if first is None:
                    raise ValueError(f"{path}: no video packets")
                looped += end - first


def serve(port: int, mounts: dict[str, tuple[Path, float]]) -> None:
    """The mounts on 127.0.0.1:``port``, one thread per client, until the process is killed."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            mount = mounts.get(self.path.strip("/"))
            if mount is None:
                self.send_error(404, f"no mount {self.path}; mounts: {', '.join(sorted(mounts))}")
                return
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.end_headers()
            with contextlib.suppress(OSError, av.FFmpegError):  # the client went away: its playback ends
                play(*mount, self.wfile)

        def log_message(self, *_: object) -> None:
            pass  # one line per client on stderr is noise here

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--mount", nargs=3, action="append", default=[], metavar=("NAME", "FILE", "DELAY"))
    args = parser.parse_args()
    serve(args.port, {name: (Path(path), float(delay)) for name, path, delay in args.mount})


if __name__ == "__main__":
    main()
