"""Secrets never reach output: URLs of every camera style are redacted, env references expand, errors
and the access log are cleaned."""

from __future__ import annotations

import logging

import pytest

from vision.config import DecodeConfig, parse_config
from vision.ingest.decoder import SourceError, VideoDecoder
from vision.secrets import (
    MissingEnvVar,
    RedactQuery,
    SecretUrl,
    expand_env,
    redact_access_log,
    redact_text,
    redact_url,
    secret_parts,
)

# Real camera URL styles (vendor manuals), with passwords that are not percent-encoded.
REDACTIONS = [
    ("rtsp://admin:hunter2@10.0.0.5:554/live", "rtsp://admin:***@10.0.0.5:554/live"),
    ("rtsp://admin@10.0.0.5/live", "rtsp://admin@10.0.0.5/live"),
    ("videos/plaza.mp4", "videos/plaza.mp4"),
    # Hikvision
    ("rtsp://admin:Hik#12?ab/c@192.168.1.64:554/Streaming/Channels/101",
     "rtsp://admin:***@192.168.1.64:554/Streaming/Channels/101"),
    # Dahua
    ("rtsp://admin:da@hua:pw@192.168.1.108:554/cam/realmonitor?channel=1&subtype=0",
     "rtsp://admin:***@192.168.1.108:554/cam/realmonitor?channel=1&subtype=0"),
    # Axis
    ("rtsp://root:ax/is#1@192.168.0.90/axis-media/media.amp?videocodec=h264&resolution=1280x720",
     "rtsp://root:***@192.168.0.90/axis-media/media.amp?videocodec=h264&resolution=1280x720"),
    # Reolink: RTSP, and the FLV stream with credentials in the query
    ("rtsp://admin:reo?link@192.168.1.20:554/h264Preview_01_main",
     "rtsp://admin:***@192.168.1.20:554/h264Preview_01_main"),
    ("http://192.168.1.20/flv?port=1935&app=bcs&stream=channel0_main.bcs&user=admin&password=Reo%23pw",
     "http://192.168.1.20/flv?port=1935&app=bcs&stream=channel0_main.bcs&user=admin&password=***"),
    # ONVIF snapshot and stream URIs
    ("http://onvif:snap#pw@10.1.1.7/onvif-http/snapshot?Profile_1",
     "http://onvif:***@10.1.1.7/onvif-http/snapshot?Profile_1"),
    ("rtsp://10.1.1.7:554/onvif1?user=op&pwd=s3cr3t&psw=s3cr3t&passwd=s3cr3t",
     "rtsp://10.1.1.7:554/onvif1?user=op&pwd=***&psw=***&passwd=***"),
    # MJPEG / HTTP with tokens and keys
    ("http://cam.local/mjpg?user=a&password=hunter2", "http://cam.local/mjpg?user=a&password=***"),
    ("https://h/x?token=abc&fps=5", "https://h/x?token=***&fps=5"),
    ("https://api.cam/live?access_token=t0k&apikey=k1&api_key=k2&key=k3&sig=s1&signature=s2",
     "https://api.cam/live?access_token=***&apikey=***&api_key=***&key=***&sig=***&signature=***"),
    ("https://h/x?AcCeSs_ToKeN=abc", "https://h/x?AcCeSs_ToKeN=***"),
    ("https://h/x?access%5Ftoken=abc", "https://h/x?access%5Ftoken=***"),
    # HLS with signed query strings: CloudFront, S3 presigned, Akamai
    ("https://d1.cloudfront.net/live/index.m3u8?Policy=eyJTdGF0&Signature=Ab~cd&Key-Pair-Id=APKA123",
     "https://d1.cloudfront.net/live/index.m3u8?Policy=***&Signature=***&Key-Pair-Id=***"),
    ("https://b.s3.amazonaws.com/live.m3u8?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20240101"
     "&X-Amz-Security-Token=FwoG&X-Amz-Signature=9f8e",
     "https://b.s3.amazonaws.com/live.m3u8?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***"
     "&X-Amz-Security-Token=***&X-Amz-Signature=***"),
    ("https://cdn.example/hls/master.m3u8?hdnts=exp=1~acl=/*~hmac=ab12",
     "https://cdn.example/hls/master.m3u8?hdnts=***"),
    # a request line as uvicorn's access log prints it
    ("/api/events?token=abc&limit=5", "/api/events?token=***&limit=5"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "shown"), REDACTIONS)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    secret = SecretUrl(url)
    assert str(secret) == shown and shown in repr(secret) and secret.get_secret_value() == url


@pytest.mark.parametrize(("url", "shown"), REDACTIONS)
def test_redact_text_scrubs_a_library_message(url: str, shown: str) -> None:
    secret = SecretUrl(url)
    message = f"Server returned 401 Unauthorized for {url} (password {secret_parts(url)})"
    cleaned = redact_text(message, secret)
    assert shown in cleaned
    for part in secret_parts(url):
        assert part not in cleaned


def test_expand_env_one_string_and_missing_names_path() -> None:
    assert expand_env("x${A}y${B}", {"A": "1", "B": "2"}) == "x1y2"
    with pytest.raises(MissingEnvVar) as info:
        expand_env("${B}", {"A": "1"}, ("a", 1, "b"))
    assert info.value.path == ("a", 1, "b") and info.value.name == "B"


def test_the_access_log_redacts_query_secrets(caplog: pytest.LogCaptureFixture) -> None:
    """On a logger of its own: other tests' uvicorn servers configure uvicorn's (the sweep in
    tests/test_secret_sweep.py checks uvicorn's real access log)."""
    logger = logging.getLogger("test.access")
    redact_access_log("test.access")
    redact_access_log("test.access")  # once is enough: a second call adds nothing
    with caplog.at_level(logging.INFO, logger="test.access"):
        request = ("127.0.0.1:5", "GET", "/api/x?token=t0p-s3cret&n=1", "1.1", 200)
        logger.info('%s - "%s %s HTTP/%s" %d', *request)
    assert "t0p-s3cret" not in caplog.text and "/api/x?token=***&n=1" in caplog.text
    assert sum(isinstance(f, RedactQuery) for f in logger.filters) == 1


def test_config_dump_and_repr_hide_secrets() -> None:
    text = (
        "cameras:\n  c:\n    url: rtsp://u:${PW}@127.0.0.1/x\n"
        "dispatch:\n  webhook_url: http://127.0.0.1:9/h\n  secret: ${SECRET}\n"
    )
    config = parse_config(text, env={"PW": "camera-pass-9", "SECRET": "webhook-key-7"})
    for shown in (config.model_dump_json(), repr(config), str(config.model_dump())):
        assert "camera-pass-9" not in shown and "webhook-key-7" not in shown
    assert "rtsp://u:***@127.0.0.1/x" in config.model_dump_json()


def test_source_errors_and_logs_hide_the_password(caplog: pytest.LogCaptureFixture) -> None:
    url = SecretUrl("rtsp://viewer:pa55word@127.0.0.1:9/stream")  # nothing listens on port 9
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as info:
        VideoDecoder("gate", url, DecodeConfig()).open()
    message = str(info.value)
    assert "camera gate" in message and "rtsp://viewer:***@127.0.0.1:9/stream" in message
    assert "pa55word" not in message and "pa55word" not in caplog.text
