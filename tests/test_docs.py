"""The committed docs match the code they describe."""

from __future__ import annotations

import importlib.util

from .conftest import ROOT


def test_config_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location("make_ref", ROOT / "docs" / "make_config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == module.render(), "run: python docs/make_config_reference.py"
