"""Operator review: figures computed in SQL on both backends, and the API of the review page against a
real pipeline on the plaza clip (filters, actions, clips, auth, bad input), with a real receiver."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

from vision.config import ClipsConfig, StorageConfig
from vision.events.clips import ClipRecorder, FrameRing, downscale
from vision.ingest.reader import CameraReader
from vision.store import open_store
from vision.types import Frame, Transition

from .api_support import ADMIN, AS_ADMIN, AS_READER, in_process, plaza_service
from .conftest import SAMPLE
from .dispatch_support import Receiver, wait_for
from .test_ingest_files import camera as file_camera
from .test_ingest_files import read_all
from .test_store import EVENT, query

T0 = 1_700_000_000.0


def test_figures_per_camera_and_type_are_computed_alike_on_both_backends(storage: StorageConfig) -> None:
    store = open_store(storage)
    # (event, camera, close reason, failed verifications, seconds to handled, seconds to close)
    tickets = [
        ("a", "cam", "verified_fixed", 1, 60.0, 600.0),
        ("b", "cam", "rejected", 0, None, 30.0),
        ("c", "cam", "closed_by_operator", 0, 120.0, 90.0),
        ("d", "cam", None, 0, None, None),  # still open
        ("e", "gate", "resolved", 0, None, 5.0),
    ]
    for event_id, camera, reason, failed, handled, closed in tickets:
        event = {**EVENT, "event_id": event_id, "camera": camera, "failed_verifications": failed}
        store.record([(Transition("open", 1.0, event), {})])
        if closed is not None:
            done = event | {"state": "resolved", "close_reason": reason}
            store.record([(Transition("close", 2.0, done), {})])
            query(
                store,
                "UPDATE transitions SET recorded_at = ? WHERE event_id = ? AND kind = 'close'",
                T0 + closed,
                event_id,
            )
        query(
            store, "UPDATE transitions SET recorded_at = ? WHERE event_id = ? AND kind = 'open'", T0, event_id
        )
        if handled is not None:
            store.add_report(f"{event_id}-h", event_id, "handled", None, None)
            iso = store.sql.dialect.iso("?")
            query(
                store, f"UPDATE reports SET received_at = {iso} WHERE key = ?", T0 + handled, f"{event_id}-h"
            )
    store.add_report("op-1", "a", "confirmed", None, None, source="operator")
    store.add_report("op-2", "a", "confirmed", "seen again", None, source="operator")  # one ticket, once
    store.add_report("tk-1", "d", "confirmed", None, None)  # not an operator's: not counted

    figures = {(f["camera"], f["type"]): f for f in store.figures()}
    cam = figures[("cam", "crowd")]
    assert {k: cam[k] for k in ("opened", "confirmed", "rejected", "verified_fixed")} == {
        "opened": 4,
        "confirmed": 1,
        "rejected": 1,
        "verified_fixed": 1,
    }
    assert (cam["failed_verifications"], cam["closed_by_operator"]) == (1, 1)
    handled, closed = cam["open_to_handled"], cam["open_to_closed"]
    assert handled["count"] == 2  # the reports' ISO times are read back to milliseconds
    assert (handled["p50"], handled["sum"], handled["mean"]) == pytest.approx((60.0, 180.0, 90.0), abs=0.01)
    assert (closed["count"], closed["p50"], closed["mean"]) == (3, 90.0, 240.0)
    # cumulative buckets (1, 10, 60, 300, 900 s, ...): 30 and 90 s by 300 s, 600 s by 900 s
    assert closed["buckets"][:5] == [0, 0, 1, 2, 3]
    gate = figures[("gate", "crowd")]
    assert (gate["opened"], gate["open_to_closed"]["p50"], "open_to_handled" in gate) == (1, 5.0, False)
    store.close()


def busy_plaza(folder: Path, url: str) -> Path:
    """The plaza clip looping in real time, a zone over the whole picture that is always crowded (a ticket
    within seconds, and a new one a second after each close), clips of 1 s before and 1 s after."""
    zones = """      everywhere:
        polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]
        rules:
          crowd: {enter_count: 2, exit_count: 1, min_duration: 1}
"""
    rest = "detector:\n  classes: [person]\n"
    path = plaza_service(folder, zones, rest, url)
    path.write_text(path.read_text() + "  clips: {before: 1, after: 1}\n")  # under storage:, the last section
    return path


def sent(receiver: Receiver, event_id: str) -> list[dict]:
    return [b for b in receiver.bodies() if b["event"]["event_id"] == event_id]


def open_ticket(receiver: Receiver, client: TestClient, but: set[str]) -> str:
    """An open event whose open the receiver has, other than ``but``."""

    def found() -> str | None:
        for event in client.get("/api/events?state=open", headers=AS_READER).json():
            if event["event_id"] not in but and sent(receiver, event["event_id"]):
                return event["event_id"]
        return None

    return wait_for(found, "an open ticket at the receiver", 60.0)


def review(client: TestClient, event_id: str, body: object, headers: dict | None = AS_ADMIN):
    return client.post(f"/api/events/{event_id}/review", json=body, headers=headers)


def test_operator_actions_filters_and_clips_over_the_api(tmp_path: Path, receiver: Receiver) -> None:
    with in_process(busy_plaza(tmp_path, receiver.url)) as running, TestClient(running.app) as client:  # type: ignore[arg-type]
        first = open_ticket(receiver, client, set())
        # every action needs the admin token; bad input is refused, naming what is wrong, before anything
        assert review(client, first, {"action": "confirm"}, headers=None).status_code == 401
        looking = review(client, first, {"action": "confirm"}, headers=AS_READER)
        assert looking.status_code == 403 and "admin token" in looking.text
        unknown = review(client, first, {"action": "delete"})
        assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "action"]
        bare = review(client, first, {"action": "close", "reason": "  "})
        assert bare.status_code == 422 and "reason" in bare.json()["detail"]
        assert review(client, first, {"action": "confirm", "extra": 1}).status_code == 422
        assert review(client, first, {"action": "confirm", "reason": "x" * 501}).status_code == 422
        assert review(client, "0" * 32, {"action": "confirm"}).status_code == 404
        assert review(client, "no/such", {"action": "confirm"}).status_code == 404
        assert client.get(f"/api/events/{first}", headers=AS_READER).json()["reports"] == []

        confirmed = review(client, first, {"action": "confirm", "reason": "a real crowd"})
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json() == {
            "event_id": first,
            "action": "confirm",
            "applied": True,
            "state": "open",
            "close_reason": None,
        }
        # filters and paging
        listed = client.get("/api/events?camera=plaza&type=crowd&state=open", headers=AS_READER).json()
        assert first in [e["event_id"] for e in listed]
        assert client.get("/api/events?type=litter", headers=AS_READER).json() == []
        assert client.get("/api/events?state=closed", headers=AS_READER).status_code == 422
        assert client.get("/api/events?limit=0", headers=AS_READER).status_code == 422
        assert client.get("/api/events?until=2000-01-01T00:00:00Z", headers=AS_READER).json() == []
        assert first in [
            e["event_id"]
            for e in client.get("/api/events?since=2000-01-01T00:00:00Z", headers=AS_READER).json()
        ]

        # the clip of the open: an H.264 MP4 of the second before it and the second after
        def clip_of_open() -> dict | None:
            clips = client.get(f"/api/events/{first}", headers=AS_READER).json()["clips"]
            return next((c for c in clips if c["kind"] == "open"), None)

        clip = wait_for(clip_of_open, "the clip of the open", 30.0)
        assert clip["start_pts"] < clip["pts"] and clip["pts"] + 1.0 <= clip["end_pts"] < clip["pts"] + 2.0
        assert client.get(clip["url"]).status_code == 401
        video = client.get(clip["url"], headers=AS_READER)
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        with av.open(io.BytesIO(video.content)) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.width) == ("h264", 320)
            assert len(list(container.decode(stream))) == clip["frames"] >= 3
        assert (
            client.get(
                f"/api/events/{first}/clips/..%2F..%2Fstreet-vision.sqlite", headers=AS_READER
            ).status_code
            == 404
        )
        assert client.get(f"/api/events/{first}/clips/1.000-open.mp4", headers=AS_READER).status_code == 404

        # close by hand: closed with the new reason, and the close with the operator's text reaches the target
        closed = review(client, first, {"action": "close", "reason": "cleared by the police"})
        assert (closed.json()["state"], closed.json()["close_reason"]) == ("resolved", "closed_by_operator")
        wait_for(
            lambda: sent(receiver, first)[-1]["transition"] == "close", "the close at the receiver", 30.0
        )
        close = sent(receiver, first)[-1]
        assert (close["event"]["close_reason"], close["note"]) == (
            "closed_by_operator",
            "cleared by the police",
        )
        again = review(client, first, {"action": "false_alarm"})
        assert again.status_code == 409 and "closed already" in again.text

        # false alarm on the next ticket: closed rejected, and that close reaches the target
        second = open_ticket(receiver, client, {first})
        pages = [client.get(f"/api/events?limit=1&offset={n}", headers=AS_READER).json() for n in (0, 1, 2)]
        assert [[e["event_id"] for e in p] for p in pages] == [[second], [first], []]  # newest first
        rejected = review(client, second, {"action": "false_alarm"})
        assert (rejected.json()["state"], rejected.json()["close_reason"]) == ("resolved", "rejected")
        wait_for(lambda: sent(receiver, second)[-1]["transition"] == "close", "the rejected close", 30.0)
        assert sent(receiver, second)[-1]["event"]["close_reason"] == "rejected"

        detail = client.get(f"/api/events/{first}", headers=AS_READER).json()
        assert [(r["source"], r["status"], r["note"]) for r in detail["reports"]] == [
            ("operator", "confirmed", "a real crowd"),
            ("operator", "closed", "cleared by the police"),
        ]
        assert (detail["deliveries"][0]["transition"], detail["deliveries"][0]["status"]) == (
            "open",
            "delivered",
        )
        assert detail["deliveries"][-1]["transition"] == "close"
        assert {c["kind"] for c in detail["clips"]} <= {"open", "close"}

        figures = client.get("/api/figures?camera=plaza", headers=AS_READER).json()
        crowd = next(f for f in figures if f["type"] == "crowd")
        assert (crowd["confirmed"], crowd["rejected"], crowd["closed_by_operator"]) == (1, 1, 1)
        assert crowd["open_to_closed"]["count"] == 2 and crowd["open_to_closed"]["p50"] >= 0
        assert client.get("/api/figures?camera=gate", headers=AS_READER).json() == []
        assert client.get("/api/figures", headers=AS_ADMIN).status_code == 200
        assert client.get("/api/figures").status_code == 401
        metrics = client.get("/metrics", headers=AS_READER).text
        for line in (
            'street_vision_tickets{camera="plaza",outcome="confirmed",type="crowd"} 1.0',
            'street_vision_tickets{camera="plaza",outcome="rejected",type="crowd"} 1.0',
            'street_vision_tickets{camera="plaza",outcome="closed_by_operator",type="crowd"} 1.0',
            'street_vision_ticket_open_to_closed_seconds_count{camera="plaza",type="crowd"} 2.0',
        ):
            assert line in metrics, metrics
    assert ADMIN not in metrics


def plaza_frames(seconds: float) -> list[Frame]:
    """The plaza clip's frames (every one, as decoded) of its first ``seconds``."""
    frames = []
    with av.open(str(SAMPLE)) as container:
        stream = container.streams.video[0]
        for decoded in container.decode(stream):
            pts = float(decoded.pts * stream.time_base)
            if pts >= seconds:
                break
            frames.append(Frame("plaza", pts, decoded.to_ndarray(format="bgr24")))
    return frames


def test_the_ring_is_bounded_and_clips_are_encoded_only_at_transitions(tmp_path: Path) -> None:
    config = ClipsConfig(before=1.0, after=0.5, fps=5.0, width=160)
    store = open_store(StorageConfig(data_dir=tmp_path))
    clips = ClipRecorder(config, tmp_path, store.another)
    frames = plaza_frames(4.0)
    height, width = frames[0].image.shape[:2]
    at = frames[19]  # two seconds of the clip's 10 fps in: no transition so far, nothing encoded
    for frame in frames[:20]:
        clips.feed(frame)
    ring = clips.rings["plaza"]
    kept = [pts for pts, _ in ring.frames]
    assert len(kept) <= ring.frames.maxlen and kept[-1] - kept[0] <= 1.0 and len(kept) >= 5
    assert all(b - a >= 0.75 / 5.0 - 1e-9 for a, b in itertools.pairwise(kept))  # at most ~fps
    assert ring.frames[0][1].shape == (round(height * 160 / width / 2) * 2, 160, 3)
    assert clips._thread is None and not (tmp_path / "snapshots").exists()

    event = {**EVENT, "event_id": "e-clip", "camera": "plaza"}
    store.record([(Transition("open", at.pts, event), {})])
    clips.mark("plaza", [Transition("open", at.pts, event), Transition("update", at.pts, event)])
    for frame in frames[20:]:
        clips.feed(frame)
    clips.close()
    (clip,) = store.clips("e-clip")
    assert clip["kind"] == "open" and clip["start_pts"] >= at.pts - 1.0
    assert at.pts + 0.5 <= clip["end_pts"] < at.pts + 0.5 + 0.2
    path = tmp_path / clip["file"]
    assert path.stat().st_size == clip["bytes"] and path.name == f"{at.pts:010.3f}-open.mp4"
    with av.open(str(path)) as container:
        decoded = list(container.decode(video=0))
    assert len(decoded) == clip["frames"] >= 6 and decoded[0].width == 160
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left behind
    store.close()


def test_the_reader_makes_the_rings_copy_and_the_ring_keeps_it(tmp_path: Path) -> None:
    """The reader shrinks each frame for the clips as it writes it (the same pixels the ring would make),
    and the ring keeps that copy rather than shrinking the frame again."""
    reader = CameraReader("plaza", file_camera(SAMPLE, detect_fps=5), clip_width=160).start()
    frames = read_all(reader)
    assert len(frames) == 200
    assert all(f.small is not None and np.array_equal(f.small, downscale(f.image, 160)) for f in frames)
    without = CameraReader("plaza", file_camera(SAMPLE, detect_fps=5)).start()  # no clips: no copy
    assert read_all(without)[0].small is None
    store = open_store(StorageConfig(data_dir=tmp_path))
    clips = ClipRecorder(ClipsConfig(before=1.0, fps=5.0, width=160), tmp_path, store.another)
    for frame in frames[:10]:
        clips.feed(frame)
    small = {f.pts: f.small for f in frames}
    ring = clips.rings["plaza"].frames
    assert len(ring) >= 5 and all(image is small[pts] for pts, image in ring)
    store.close()


def test_a_reader_handing_over_every_frame_copies_only_those_the_ring_keeps() -> None:
    """Detecting faster than clips are kept, a file's reader makes the ring's copy of exactly the frames the
    ring keeps: the same frames and pixels as a ring shrinking every frame itself, and no copy it skips."""
    camera = file_camera(SAMPLE, detect_fps=10)
    assert not camera.live  # every frame reaches the ring
    frames = read_all(CameraReader("plaza", camera, clip_width=160, clip_fps=3.0).start())
    copied, shrunk = FrameRing(30.0, 3.0, 160), FrameRing(30.0, 3.0, 160)
    kept = [copied.push(f) for f in frames]
    expected = [shrunk.push(Frame(f.camera_id, f.pts, f.image, f.captured)) for f in frames]  # it shrinks
    assert 10 < sum(k is not None for k in kept) < len(frames) / 2  # thinned: 10 fps sampled, 3 kept
    for frame, mine, plain in zip(frames, kept, expected, strict=True):
        assert (mine is None) == (plain is None) == (frame.small is None)
        assert mine is None or (mine[1] is frame.small and np.array_equal(mine[1], plain[1]))
