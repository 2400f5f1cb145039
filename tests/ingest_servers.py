"""Real stream servers on 127.0.0.1 for the ingest tests, each started and killed by the test.

- :class:`PerlRtsp`: Debian's rtsp-server-perl (UDP transport only) fed by an ffmpeg publisher;
- :class:`GstRtsp`: GStreamer's RTSP server (TCP only), run by the system Python that has gi;
- :class:`MjpegServer`: an HTTP multipart MJPEG camera, optionally behind Basic auth;
- :func:`serve_directory`: plain HTTP for an HLS playlist;
- :class:`SlowProxy`: a TCP proxy in front of any of them, slow to answer or silent on demand.

Ports are picked free at start. Every process is killed in ``close()`` (the fixtures call
it in ``finally``), and everything waits with a deadline.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import cv2

from .conftest import ROOT, SAMPLE

GI_PYTHON = "/usr/bin/python3"  # Debian's python3-gi lives in the system Python
GST_SERVER = ROOT / "tests" / "gst_rtsp_server.py"
NEEDS = (
    "apt-get install -y rtsp-server-perl ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad (see .ci/run)"
)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_ports(count: int = 8) -> int:
    """The first of ``count`` consecutive free UDP ports (even, as RTP wants)."""
    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(30000, 60000, 2)
        sockets = []
        try:
            for port in range(first, first + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free UDP port range on 127.0.0.1")


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise RuntimeError(f"{program} is missing; the ingest tests need: {NEEDS}")
    return path


def _kill(proc: subprocess.Popen[bytes] | None) -> None:
    """Kill one process we started (and its group), and reap it."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )


class PerlRtsp:
    """rtsp-server-perl on free ports; ``publish(name)`` starts an ffmpeg feeding the sample clip."""

    def __init__(self) -> None:
        self.client_port = free_port()
        self.publish_port = free_port()
        self.rtp_port = free_udp_ports()  # RTP/RTCP pairs count up from here, 2 per stream
        self.server: subprocess.Popen[bytes] | None = None
        self.publishers: dict[str, subprocess.Popen[bytes]] = {}

    def url(self, name: str, userinfo: str = "") -> str:
        return f"rtsp://{userinfo}127.0.0.1:{self.client_port}/{name}"

    def start(self) -> PerlRtsp:
        # The server resets its RTP ports to the module's $RTP_START_PORT (20000) whenever it has no
        # stream, whatever --rtp_start_port says; set that variable too, so that servers of
        # concurrent test runs never share UDP ports.
        wrapper = "$RTSP::Server::RTP_START_PORT = shift @ARGV; do $ENV{RTSP_SERVER_SCRIPT}; die $@ if $@"
        self.server = _start(
            [
                *("perl", "-MRTSP::Server", "-e", wrapper, str(self.rtp_port)),
                *("--clientport", str(self.client_port), "--serverport", str(self.publish_port)),
                *("--client_listen_address", "127.0.0.1", "--source_listen_address", "127.0.0.1"),
                *("--rtp_start_port", str(self.rtp_port)),
            ],
            env={**os.environ, "RTSP_SERVER_SCRIPT": _need("rtsp-server-perl")},
        )
        try:
            wait_for_port(self.client_port)
            wait_for_port(self.publish_port)
        except TimeoutError:
            self.kill()  # a server that never came up must not outlive the test
            raise
        return self

    def publish(
        self, name: str, gop: int = 10, video: Path = SAMPLE, width: int = 384, copy: bool = False
    ) -> None:
        """Publish a clip (the sample by default, ``width`` wide) looped, with a keyframe every ``gop``
        frames; ``copy``: the file's H.264 as it is (no encoding: next to no CPU per camera, for
        benchmarks)."""
        source = [_need("ffmpeg"), "-v", "error", "-re", "-stream_loop", "-1", "-i", str(video), "-an"]
        if copy:
            self.publishers[name] = _start([*source, "-c", "copy", "-f", "rtsp", self._publish_url(name)])
            self._wait_published(name)
            return
        self.publishers[name] = _start(
            [
                *source,
                "-vf",
                f"scale={width}:-2",  # 384: a substream's size, few packets for the Perl relay on a busy box
                "-c:v",
                "libx264",
                "-threads",
                "1",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
                "-g",
                str(gop),
                "-f",
                "rtsp",
                self._publish_url(name),
            ]
        )

        self._wait_published(name)

    def _publish_url(self, name: str) -> str:
        return f"rtsp://127.0.0.1:{self.publish_port}/{name}"

    def _wait_published(self, name: str, timeout: float = 10.0) -> None:
        """Until the server answers DESCRIBE for ``name`` with 200 (the publisher is through)."""
        request = f"DESCRIBE {self.url(name)} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.client_port), 1) as s,
            ):
                s.settimeout(1.0)
                s.sendall(request.encode())
                if s.recv(1024).startswith(b"RTSP/1.0 200"):
                    return
            time.sleep(0.1)
        raise TimeoutError(f"the publisher of {name} did not get through in {timeout} s")

    def stop_publishing(self, name: str) -> None:
        _kill(self.publishers.pop(name, None))

    def kill(self) -> None:
        """The server dies (SIGKILL) and its publishers with it."""
        for name in list(self.publishers):
            self.stop_publishing(name)
        _kill(self.server)
        self.server = None

    close = kill


class GstRtsp:
    """GStreamer's RTSP server over TCP only: the sample clip at /cam, or ``mounts`` (name, H.264 MP4,
    seconds its stream is held back after PLAY), all in one process (tests/gst_rtsp_server.py)."""

    def __init__(self, mounts: list[tuple[str, Path, float]] | None = None) -> None:
        self.port = free_port()
        self.mounts = mounts
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, name: str = "cam") -> str:
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    def start(self) -> GstRtsp:
        if not Path(GI_PYTHON).exists():
            raise RuntimeError(f"{GI_PYTHON} is missing; the ingest tests need: {NEEDS}")
        served = [str(SAMPLE)]
        if self.mounts is not None:
            served = [
                arg for name, clip, delay in self.mounts for arg in ("--mount", name, str(clip), str(delay))
            ]
        self.proc = _start([GI_PYTHON, str(GST_SERVER), str(self.port), *served])
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.close()
            raise RuntimeError(
                f"GStreamer RTSP server did not start; the ingest tests need: {NEEDS}"
            ) from None
        return self

    def close(self) -> None:
        _kill(self.proc)


@functools.cache
def jpeg_frames(count: int = 30) -> tuple[bytes, ...]:
    """The first frames of the sample clip as JPEG, encoded once."""
    frames = []
    with av.open(str(SAMPLE)) as container:
        for frame in container.decode(video=0):
            frames.append(cv2.imencode(".jpg", frame.to_ndarray(format="bgr24"))[1].tobytes())
            if len(frames) == count:
                break
    return tuple(frames)


class MjpegServer:
    """A multipart/x-mixed-replace camera at 10 fps, like most IP cameras' MJPEG endpoint; with
    ``silent_after``, one that sends that many frames per connection and then nothing, the connection
    left open (a camera hung with its socket up)."""

    def __init__(
        self, user: str | None = None, password: str | None = None, silent_after: int | None = None
    ) -> None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode() if user else None
        frames = jpeg_frames()
        stopping = threading.Event()
        self._stopping = stopping

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if token and self.headers.get("Authorization") != f"Basic {token}":
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="cam"')
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                with contextlib.suppress(OSError):
                    while not stopping.is_set():
                        if i == silent_after:
                            stopping.wait()  # silent, the socket open, until the server closes
                            return
                        jpeg = frames[i % len(frames)]
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                        self.wfile.write(head.encode() + jpeg + b"\r\n")
                        i += 1
                        stopping.wait(0.1)

            def log_message(self, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.port}/video.mjpg"

    def close(self) -> None:
        self._stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


@contextlib.contextmanager
def serve_directory(folder: Path) -> Iterator[int]:
    """Plain HTTP for the files of ``folder`` (an HLS playlist and its segments); yields the port."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


class SlowProxy:
    """A TCP proxy on 127.0.0.1 in front of ``port`` that holds the server's first bytes of each
    connection back ``hold`` seconds (a server slow to answer: loaded, or opening a hundred cameras at
    once); :meth:`freeze` silences the connections open then, their sockets left up (a camera hung, a
    network partition), while new connections pass as before; :meth:`delay` makes every byte from the
    server come that much later from then on (a link that queued seconds of stream and never drains
    its queue: a reader behind the live edge for good)."""

    def __init__(self, port: int, hold: float = 0.0) -> None:
        self.upstream = port
        self.hold = hold
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        self._delay = 0.0  # seconds every byte from the server is held back (see delay())
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._frozen: list[threading.Event] = []  # one per connection
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while not self._closed.is_set():
                client, _ = self._listener.accept()
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
                server.settimeout(None)
                frozen = threading.Event()
                with self._lock:
                    self._sockets += [client, server]
                    self._frozen.append(frozen)
                for source, sink, late in ((server, client, True), (client, server, False)):
                    args = (source, sink, late, frozen)
                    threading.Thread(target=self._pump, args=args, daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, late: bool, frozen: threading.Event) -> None:
        """Forward ``source`` to ``sink`` until either closes, by a sender thread that sends each chunk
        when it is due: from the server (``late``) the first bytes ``hold`` seconds late and every
        byte ``delay`` seconds late; nothing once frozen."""
        line: queue.SimpleQueue[tuple[float, bytes] | None] = queue.SimpleQueue()
        threading.Thread(target=self._send, args=(line, sink, frozen), daemon=True).start()
        hold = self.hold if late else 0.0
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                line.put((time.monotonic() + hold + (self._delay if late else 0.0), data))
                hold = 0.0
        line.put(None)

    def _send(
        self,
        line: queue.SimpleQueue[tuple[float, bytes] | None],
        sink: socket.socket,
        frozen: threading.Event,
    ) -> None:
        with contextlib.suppress(OSError):
            while (chunk := line.get()) is not None:
                due, data = chunk
                if self._closed.wait(max(0.0, due - time.monotonic())):
                    return
                if frozen.is_set():
                    self._closed.wait()  # silent, the sockets up, until the proxy closes
                    return
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)  # one side closed: pass it on

    def delay(self, seconds: float) -> None:
        """From now on every byte from the server reaches the client ``seconds`` after it came."""
        self._delay = seconds

    def freeze(self) -> None:
        with self._lock:
            for frozen in self._frozen:
                frozen.set()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
