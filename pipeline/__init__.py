"""credit-audit's library: load, model, explain and audit a credit portfolio.

Pure functions and estimators only: no Prefect, no file writes except the
explicit save/load functions. `flows/` wires these steps; `reports/` renders
their results.
"""

from ._lazy import lazy_getattr

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

__getattr__ = lazy_getattr(__name__, _LAZY)


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
