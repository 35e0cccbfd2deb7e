"""Library versions recorded with every run, so an audit can be reproduced."""

from __future__ import annotations

import platform
from importlib import metadata

_PACKAGES = ("torch", "numpy", "pandas", "scikit-learn", "shap", "lime", "fairlearn", "prefect", "weasyprint", "pandera")


def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found
