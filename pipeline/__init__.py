"""credit-audit's library: load, model, explain and audit a credit portfolio.

Pure functions and estimators only: no Prefect, no file writes except the
explicit save/load functions. `flows/` wires these steps; `reports/` renders
their results.
"""

import importlib

# Name -> submodule, imported on first use (PEP 562): `from pipeline import schema` in a
# notice-rendering worker must not pay for torch, which `model` imports.
_LAZY = {
    "DataValidationError": "._loading",
    "Finding": "._loading",
    "Portfolio": "._loading",
    "content_hash": "._loading",
    "load_portfolio": "._loading",
    "resolve_device": ".device",
    "CreditModel": ".model",
    "ThresholdPolicy": ".policy",
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name], __name__), name)


__all__ = [
    "CreditModel",
    "DataValidationError",
    "Finding",
    "Portfolio",
    "ThresholdPolicy",
    "content_hash",
    "load_portfolio",
    "resolve_device",
]
