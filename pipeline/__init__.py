"""credit-audit's library: load, model, explain and audit a credit portfolio.

Pure functions and estimators only: no Prefect, no file writes except the
explicit save/load functions. `flows/` wires these steps; `reports/` renders
their results.
"""

from ._lazy import lazy_getattr  # also for the other packages: one lazy-import mechanism in the project

# Name -> submodule, imported on first use (PEP 562): `from pipeline import schema` in a
# notice-rendering worker must not pay for torch, which `model` imports.
_LAZY = {
    "atomic_write_bytes": "._io",
    "atomic_write_text": "._io",
    "remove_temporaries": "._io",
    "DataValidationError": "._loading",
    "Finding": "._loading",
    "Portfolio": "._loading",
    "content_hash": "._loading",
    "check_audit_size": "._loading",
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
    "atomic_write_bytes",
    "atomic_write_text",
    "check_audit_size",
    "content_hash",
    "lazy_getattr",
    "load_portfolio",
    "remove_temporaries",
    "resolve_device",
]
