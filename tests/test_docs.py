"""The committed docs match the code they describe."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from .conftest import ROOT


def generator(name: str) -> ModuleType:
    """A docs/ script that writes a generated file; its ``render()`` is what the file must hold."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_reference_is_current() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == generator("make_config_reference").render(), (
        "run: python docs/make_config_reference.py"
    )
