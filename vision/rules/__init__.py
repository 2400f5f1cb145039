"""Rules are plugins: every :class:`vision.rules.base.Rule` subclass in this package is registered.

A new event type is one new module here (a ``Rule`` subclass with a ``Config`` model);
the config file then accepts ``rules: {<name>: {...}}`` on any zone.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from vision.rules.base import Rule


@cache
def registry() -> dict[str, type[Rule]]:
    """Import every module of this package once and return the rules by name."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return {
        rule.name: rule for rule in sorted(Rule.__subclasses__(), key=lambda r: r.name)
    }  # import order varies
