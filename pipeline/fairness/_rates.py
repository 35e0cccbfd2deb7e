"""The per-group rates of one attribute as one object; every disparity is a reduction of it.

In the manner of fairlearn's `MetricFrame(...).difference()` / `.ratio()`:
`GroupRates` holds, for the judged groups of one attribute, the point rates
and their bootstrap replicates, and a between-group statistic is a method
call on it (`difference`, `ratio`, `ratio_to_max`). Each reduction is applied
to the point estimates and to every replicate by the same code, so an
interval is always the interval of the statistic that is printed beside it,
and a rule such as the four-fifths ratio exists in exactly one place.

A reduction returns an `Estimate`: the value and its replicates, which the
caller turns into an interval. Rates are in `RATES` order (see
`_bootstrap.py` for their definitions and conventions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._bootstrap import RATE_INDEX, percentile_interval

MSG_RATE = "unknown rate {name!r}; expected one of {expected}"
MSG_SHAPE = "point rates must be (groups, rates) = {want}, got {got}; replicates (B, groups, rates), got {reps}"
MSG_REPLICATES = "both estimates need the same replicates: got shapes {a} and {b}"


@dataclass(frozen=True, eq=False)
class Estimate:
    """A statistic's point value and its bootstrap replicates (leading dimension B), made by one reduction."""

    value: torch.Tensor
    replicates: torch.Tensor

    def maximum(self, other: Estimate) -> Estimate:
        """Elementwise larger of two statistics, replicate by replicate (NaN wins, as an undefined gap must)."""
        if self.replicates.shape != other.replicates.shape:
            raise ValueError(MSG_REPLICATES.format(a=tuple(self.replicates.shape), b=tuple(other.replicates.shape)))
        return Estimate(torch.maximum(self.value, other.value), torch.maximum(self.replicates, other.replicates))

    def interval(self, level: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Percentile bootstrap interval at `level`, undefined (NaN) replicates left out."""
        return percentile_interval(self.replicates, level)


def _ratio_to_max(x: torch.Tensor) -> torch.Tensor:
    """(..., G) -> (..., G): each value over the largest; NaN where the largest is not positive."""
    top = torch.amax(x, dim=-1, keepdim=True)
    return torch.where(top > 0, x / torch.where(top > 0, top, 1.0), float("nan"))


@dataclass(frozen=True, eq=False)
class GroupRates:
    """Point rates (G, R) and bootstrap replicates (B, G, R) of the judged groups of one attribute.

    Immutable: the fields cannot be rebound and no method writes into the tensors. A group
    that is undefined for a rate (NaN) makes every between-group statistic of that rate
    undefined, as fairlearn's do.
    """

    groups: tuple[str, ...]
    point: torch.Tensor
    replicates: torch.Tensor

    def __post_init__(self) -> None:
        g = len(self.groups)
        want = (g, len(RATE_INDEX))
        if tuple(self.point.shape) != want or self.replicates.dim() != 3 or tuple(self.replicates.shape[1:]) != want:
            raise ValueError(MSG_SHAPE.format(want=want, got=tuple(self.point.shape), reps=tuple(self.replicates.shape)))

    def _reduce(self, rate: str, f: Callable[[torch.Tensor], torch.Tensor]) -> Estimate:
        if rate not in RATE_INDEX:
            raise KeyError(MSG_RATE.format(name=rate, expected=tuple(RATE_INDEX)))
        i = RATE_INDEX[rate]
        return Estimate(f(self.point[..., i]), f(self.replicates[..., i]))

    def by_group(self, rate: str) -> Estimate:
        """The rate of each group: value (G,), replicates (B, G)."""
        return self._reduce(rate, lambda x: x)

    def group_max(self, rate: str) -> Estimate:
        return self._reduce(rate, lambda x: torch.amax(x, dim=-1))

    def group_min(self, rate: str) -> Estimate:
        return self._reduce(rate, lambda x: torch.amin(x, dim=-1))

    def difference(self, rate: str) -> Estimate:
        """Largest minus smallest group rate (fairlearn's `difference(method="between_groups")`)."""
        return self._reduce(rate, lambda x: torch.amax(x, dim=-1) - torch.amin(x, dim=-1))

    def ratio_to_max(self, rate: str) -> Estimate:
        """Each group's rate over the highest group rate, recomputed per replicate: value (G,), replicates (B, G)."""
        return self._reduce(rate, _ratio_to_max)

    def ratio(self, rate: str) -> Estimate:
        """Smallest over largest group rate (fairlearn's `ratio(method="between_groups")`).

        Taken as the lowest `ratio_to_max`, which equals min / max exactly (dividing by the
        same positive number preserves order, also after rounding), so the four-fifths ratio
        and the demographic parity ratio come from one computation.
        """
        return self._reduce(rate, lambda x: torch.amin(_ratio_to_max(x), dim=-1))
