"""lime's tabular neighbourhood distribution, tabulated so a device can sample it with one lookup.

lime's `LimeTabularExplainer` (discretize_continuous=True, quartile
discretizer) perturbs every feature independently:

* a categorical feature takes a code drawn with its training frequency;
* a continuous feature takes a quartile bin drawn with its training
  frequency, then a value from a normal with the bin's training mean and std,
  truncated to the bin's bounds (`QuartileDiscretizer.undiscretize`).

Per feature that is one distribution: a mixture whose quantile function
maps u in [0, 1) to (code or bin, value), with the bin read off from where u
falls among the cumulative frequencies, as lime's `random_state.choice` does,
and u's position inside the bin's share fed to the bin's truncated-normal
quantile (the conditional-sampling identity). `LimeSampler` evaluates that
quantile function at the midpoints of `QUANTILE_CELLS` equal cells, so a
draw is one uniform integer and one table lookup: lime's distribution,
quantised to 1/32768 of probability. Cells are ordered by code or bin, so
"the sample's bin equals the applicant's" (lime's binary representation) is
"the cell lies in the applicant's cell range": two comparisons, no lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import truncnorm

QUANTILE_CELLS = 1 << 15
_QUARTILES = (25, 50, 75)
_STD_FLOOR = 1e-11  # lime adds this to every bin's std


@dataclass(frozen=True)
class LimeSampler:
    """Per-feature quantile tables of lime's neighbourhood distribution, fitted on training data."""

    table: np.ndarray  # (n_features, QUANTILE_CELLS): raw value drawn by each cell
    codes: tuple[np.ndarray, ...]  # per feature: the codes (categorical) or bins (continuous) cells draw, sorted
    starts: tuple[np.ndarray, ...]  # per feature: first cell of each of `codes`
    ends: tuple[np.ndarray, ...]  # per feature: one past the last cell of each of `codes`
    edges: tuple[np.ndarray | None, ...]  # per feature: quartile edges (None when categorical)

    @classmethod
    def fit(cls, training: np.ndarray, categorical: set[int]) -> LimeSampler:
        """Statistics as lime computes them from `training` (n_rows, n_features)."""
        midpoints = (np.arange(QUANTILE_CELLS) + 0.5) / QUANTILE_CELLS
        columns = [_fit_column(training[:, j], j in categorical, midpoints) for j in range(training.shape[1])]
        table, codes, cell_codes, edges = zip(*columns, strict=True)
        starts = tuple(
            np.searchsorted(cc, np.arange(len(c)), side="left") for c, cc in zip(codes, cell_codes, strict=True)
        )
        ends = tuple(
            np.searchsorted(cc, np.arange(len(c)), side="right") for c, cc in zip(codes, cell_codes, strict=True)
        )
        return cls(np.vstack(table), tuple(codes), starts, ends, tuple(edges))

    @property
    def n_features(self) -> int:
        return self.table.shape[0]

    def own_cells(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per applicant and feature, the cell range [low, high) drawing the applicant's own code or bin.

        The applicant's bin is lime's `discretize` of its value; a code never
        seen in training gets an empty range (no sample matches it).
        """
        low = np.zeros(x.shape, dtype=np.int64)
        high = np.zeros(x.shape, dtype=np.int64)
        for j in range(self.n_features):
            own = x[:, j] if self.edges[j] is None else np.searchsorted(self.edges[j], x[:, j])
            k = np.searchsorted(self.codes[j], own)
            k_in = np.minimum(k, len(self.codes[j]) - 1)
            seen = self.codes[j][k_in] == own
            low[:, j] = np.where(seen, self.starts[j][k_in], 0)
            high[:, j] = np.where(seen, self.ends[j][k_in], 0)
        return low, high


def _fit_column(
    column: np.ndarray, categorical: bool, midpoints: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(cell values, codes, code index of each cell, quartile edges) of one feature."""
    if categorical:
        codes, counts = np.unique(column, return_counts=True)
        freq = counts / counts.sum()
        cell_codes = _pick(freq, midpoints)
        return codes[cell_codes].astype(np.float64), codes, cell_codes, None
    edges = np.unique(np.percentile(column, _QUARTILES))
    bins = np.searchsorted(edges, column)
    codes, counts = np.unique(bins, return_counts=True)
    freq = counts / counts.sum()
    cell_codes = _pick(freq, midpoints)
    inner = (midpoints - (np.cumsum(freq) - freq)[cell_codes]) / freq[cell_codes]
    values = np.empty_like(midpoints)
    for k, b in enumerate(codes):
        in_bin = cell_codes == k
        values[in_bin] = _bin_quantiles(column[bins == b], b, edges, column, np.clip(inner[in_bin], 0.0, 1.0))
    return values, codes, cell_codes, edges


def _pick(freq: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index drawn by uniform u among frequencies `freq` (numpy's `choice`: searchsorted, side right)."""
    cdf = np.cumsum(freq)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(freq) - 1)


def _bin_quantiles(in_bin: np.ndarray, b: int, edges: np.ndarray, column: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Quantiles u of the bin's truncated normal, with lime's bounds, mean and std (+1e-11).

    Where the bin's bounds coincide lime returns the standardised bound
    instead of a value; kept, so both sample the same distribution.
    """
    low = column.min() if b == 0 else edges[b - 1]
    high = column.max() if b == len(edges) else edges[b]
    mean, std = in_bin.mean(), in_bin.std() + _STD_FLOOR
    a, c = (low - mean) / std, (high - mean) / std
    if a == c:
        return np.full_like(u, a)
    return truncnorm.ppf(u, a, c, loc=mean, scale=std)
