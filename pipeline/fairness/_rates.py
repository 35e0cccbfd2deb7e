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

Between-group gaps (max - min) and the lowest ratio (min / max) are bounded
(a gap is never below 0, the ratio never above 1) and are extremes over the
groups, so their replicates sit on one side of the estimate when the groups
are close: a percentile interval of the gap itself can exclude its own
estimate (a marital-status equalized odds difference of 0.002 was printed
with [0.003, 0.057]). Such a reduction returns a `GapEstimate`, which also
keeps the signed difference (or ratio) of every pair of groups. Its interval
is read off intervals of those signed pair statistics: the gap is at least
the largest distance from zero (from 1, for ratios) that some pair's
interval forces, and at most the largest that any pair's interval allows.
The pair intervals form one simultaneous max-|t| band
(`simultaneous_band`), centred on the pair estimates, so the gap's interval
always contains the gap, and it holds for all pairs of an attribute at once
(the comparisons between its groups are corrected for multiplicity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._bootstrap import RATE_INDEX, percentile_interval

DIFFERENCE, RATIO = "difference", "ratio"
INTERVAL_METHOD = (
    "gaps and lowest ratios: from a simultaneous max-|t| bootstrap band over the signed difference (log ratio) "
    "of every pair of groups; single rates: percentile intervals"
)
MSG_RATE = "unknown rate {name!r}; expected one of {expected}"
MSG_SHAPE = "point rates must be (groups, rates) = {want}, got {got}; replicates (B, groups, rates), got {reps}"
MSG_REPLICATES = "both estimates need the same replicates: got shapes {a} and {b}"
MSG_KINDS = "only gaps of the same kind combine: got {a} and {b}"


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


@dataclass(frozen=True, eq=False)
class GapEstimate(Estimate):
    """A gap (max - min) or lowest ratio (min / max) between groups, with the pair statistics it is the extreme of.

    `pair_value` (P,) and `pair_replicates` (B, P) are the signed difference (or ratio) of
    each pair of groups; `kind` says which. `interval` is derived from theirs (module docstring).
    """

    pair_value: torch.Tensor
    pair_replicates: torch.Tensor
    kind: str

    def maximum(self, other: Estimate) -> GapEstimate:
        """The larger of two gaps (equalized odds: TPR gap or FPR gap); its pairs are both sets."""
        if not isinstance(other, GapEstimate) or other.kind != self.kind:
            raise ValueError(MSG_KINDS.format(a=self.kind, b=getattr(other, "kind", type(other).__name__)))
        larger = super().maximum(other)
        return GapEstimate(larger.value, larger.replicates, torch.cat([self.pair_value, other.pair_value]),
                           torch.cat([self.pair_replicates, other.pair_replicates], dim=-1), self.kind)

    def interval(self, level: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Bounds of the gap implied by the simultaneous band of its pair statistics (NaN if any is undefined)."""
        if self.pair_value.shape[-1] == 0:
            return self.value, self.value
        if self.kind == DIFFERENCE:
            lo, hi = simultaneous_band(self.pair_value, self.pair_replicates, level)
            least = torch.maximum(torch.maximum(torch.zeros_like(lo), lo), -hi)  # distance of [lo, hi] from 0
            most = torch.maximum(lo.abs(), hi.abs())
            return torch.amax(least, dim=-1), torch.amax(most, dim=-1)
        log_lo, log_hi = simultaneous_band(torch.log(self.pair_value), torch.log(self.pair_replicates), level)
        lo, hi = torch.exp(log_lo), torch.exp(log_hi)  # a ratio's band is symmetric on the log scale
        m_lo, m_hi = torch.minimum(lo, 1 / lo), torch.minimum(hi, 1 / hi)  # min(q, 1/q): 1 when equal
        least = torch.minimum(m_lo, m_hi)
        most = torch.where((lo <= 1) & (hi >= 1), torch.ones_like(lo), torch.maximum(m_lo, m_hi))
        return torch.amin(least, dim=-1), torch.amin(most, dim=-1)


def simultaneous_band(value: torch.Tensor, replicates: torch.Tensor, level: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Max-|t| bootstrap band: value (P,) +- c * se, c the `level` quantile over replicates of the largest |t|.

    se is each statistic's bootstrap standard deviation; t = (replicate - value) / se. The
    band covers all P statistics at once at `level` (the usual "sup-t" band, less conservative
    than Bonferroni because it uses how the pairs move together) and is centred on the
    estimates, so it always contains them. Undefined (NaN) replicates are left out.
    """
    finite = ~torch.isnan(replicates)
    n = finite.sum(dim=0).clamp(min=2)
    centred = torch.where(finite, replicates - value, 0.0)
    se = torch.sqrt((centred**2).sum(dim=0) / (n - 1))
    t = torch.where(finite & (se > 0), centred.abs() / torch.where(se > 0, se, 1.0), 0.0)
    worst = torch.amax(t, dim=-1)
    c = torch.quantile(worst, level)
    return value - c * se, value + c * se


def _pairs(x: torch.Tensor, kind: str) -> torch.Tensor:
    """(..., G) -> (..., G(G-1)/2): x_i - x_j (or x_i / x_j, NaN where x_j is not positive) for i < j."""
    i, j = torch.triu_indices(x.shape[-1], x.shape[-1], offset=1, device=x.device)
    a, b = x[..., i], x[..., j]
    if kind == DIFFERENCE:
        return a - b
    return torch.where(b > 0, a / torch.where(b > 0, b, 1.0), float("nan"))


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

    def _gap(self, rate: str, f: Callable[[torch.Tensor], torch.Tensor], kind: str) -> GapEstimate:
        whole, pairs = self._reduce(rate, f), self._reduce(rate, lambda x: _pairs(x, kind))
        return GapEstimate(whole.value, whole.replicates, pairs.value, pairs.replicates, kind)

    def difference(self, rate: str) -> GapEstimate:
        """Largest minus smallest group rate (fairlearn's `difference(method="between_groups")`)."""
        return self._gap(rate, lambda x: torch.amax(x, dim=-1) - torch.amin(x, dim=-1), DIFFERENCE)

    def ratio_to_max(self, rate: str) -> Estimate:
        """Each group's rate over the highest group rate, recomputed per replicate: value (G,), replicates (B, G)."""
        return self._reduce(rate, _ratio_to_max)

    def ratio(self, rate: str) -> GapEstimate:
        """Smallest over largest group rate (fairlearn's `ratio(method="between_groups")`).

        Taken as the lowest `ratio_to_max`, which equals min / max exactly (dividing by the
        same positive number preserves order, also after rounding), so the four-fifths ratio
        and the demographic parity ratio come from one computation.
        """
        return self._gap(rate, lambda x: torch.amin(_ratio_to_max(x), dim=-1), RATIO)
