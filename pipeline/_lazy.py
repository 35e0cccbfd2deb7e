"""Package attributes imported on first use (PEP 562).

A package that re-exports names from heavy submodules (torch, matplotlib)
would make every `from package import light_module` pay for them: notice
workers import `pipeline.schema` and `reports._notice` thousands of times
cheaper this way.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_getattr(package: str, where: Mapping[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` that imports `where[name]` (relative to `package`) when `name` is first used."""

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name], package), name)

    return __getattr__
