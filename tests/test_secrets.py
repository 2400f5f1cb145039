"""Secrets never reach output: URLs are redacted, env references expand, errors are cleaned."""

from __future__ import annotations

import logging

import pytest

from vision.config import DecodeConfig, parse_config
from vision.ingest.decoder import SourceError, VideoDecoder
from vision.secrets import MissingEnvVar, SecretUrl, expand_env, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:hunter2@10.0.0.5:554/live", "rtsp://admin:***@10.0.0.5:554/live"),
        ("rtsp://admin@10.0.0.5/live", "rtsp://admin@10.0.0.5/live"),
        ("http://cam.local/mjpg?user=a&password=hunter2", "http://cam.local/mjpg?user=a&password=***"),
        ("https://h/x?token=abc&fps=5", "https://h/x?token=***&fps=5"),
        ("videos/plaza.mp4", "videos/plaza.mp4"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    secret = SecretUrl(url)
    assert str(secret) == shown and shown in repr(secret) and secret.get_secret_value() == url


def test_expand_env_everywhere_and_missing_names_path() -> None:
    tree = {"a": ["x${A}y", {"b": "${B}"}], "n": 3}
    assert expand_env(tree, {"A": "1", "B": "2"}) == {"a": ["x1y", {"b": "2"}], "n": 3}
    with pytest.raises(MissingEnvVar) as info:
        expand_env(tree, {"A": "1"})
    assert info.value.path == ("a", 1, "b") and info.value.name == "B"


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
