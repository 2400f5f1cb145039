"""Zone edits written back to the config file: the raw YAML, validated whole, replaced atomically.

The raw data (not the expanded one) is edited, so ``${ENV}`` references stay references
and no secret is ever written into the file. The edited file is validated exactly as
``street-vision check`` would before it replaces the old one (temp file + os.replace),
so a crash or a refused edit leaves the previous file whole. PyYAML does not keep
comments: the file's leading comment block is kept, comments further down are lost.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from vision.config import CameraConfig, ConfigError, parse_config, resolve_paths

Zones = dict[str, Any]  # the raw `zones:` mapping of one camera
LINE = re.compile(r" \(line \d+\)$")


class ConfigFile:
    """One config file on disk; edits are serialized by a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @contextmanager
    def edit_zones(self, camera_id: str, change: Callable[[Zones], None]) -> Iterator[CameraConfig]:
        """Apply ``change`` to the camera's raw zones, validate and write the file; yield the camera.

        If the body of the ``with`` raises (the pipeline refused the camera), the previous
        file is written back, so file and pipeline never disagree.
        """
        with self._lock:
            text = self.path.read_text(encoding="utf-8")
            data = yaml.safe_load(text)
            camera = data["cameras"][camera_id]
            if camera.get("zones") is None:
                camera["zones"] = {}
            change(camera["zones"])
            new_text = _header(text) + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
            try:
                config = resolve_paths(parse_config(new_text, "edit"), self.path.resolve().parent)
            except ConfigError as exc:
                raise ConfigError([LINE.sub("", p.removeprefix("edit: ")) for p in exc.problems]) from None
            self._write(new_text)
            try:
                yield config.cameras[camera_id]
            except BaseException:
                self._write(text)
                raise

    def _write(self, text: str) -> None:
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        mode = self.path.stat().st_mode & 0o7777
        with open(partial, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), mode)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, self.path)


def _header(text: str) -> str:
    """The comment lines at the top of the file."""
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line)
    return "".join(lines)
