"""credit-audit's library: load, model, explain and audit a credit portfolio.

Pure functions and estimators only: no Prefect, no file writes except the
explicit save/load functions. `flows/` wires these steps; `reports/` renders
their results.
"""

from ._loading import DataValidationError, Finding, Portfolio, content_hash, load_portfolio
from .device import resolve_device
from .model import CreditModel
from .policy import ThresholdPolicy

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
