"""A fleet bundle's series on the device: ids to positions, and each series' numbers as arrays.

A global model scales every window with its own series' min-max numbers. Held as arrays with one
row per series, they are gathered per window by series position, so scaling a batch of windows
from many series costs one numpy indexing, not a loop over the windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from forecaster.bundle import FleetSpec
from forecaster.errors import BundleError
from forecaster.intervals import Intervals, level_name


@dataclass
class FleetTables:
    """Per-series scaler numbers (series, columns) and interval half-widths, by series position."""

    spec: FleetSpec
    features: tuple[str, ...]
    targets: tuple[str, ...]
    positions: dict[str, int] = field(init=False)
    scale: np.ndarray = field(init=False)  # (series, features)
    offset: np.ndarray = field(init=False)
    data_min: np.ndarray = field(init=False)
    data_max: np.ndarray = field(init=False)
    target_index: list[int] = field(init=False)
    _widths: dict[tuple[float, ...], np.ndarray] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.positions = {s.id: i for i, s in enumerate(self.spec.series)}
        columns = [[s.scaler.columns.index(c) for c in self.features] for s in self.spec.series]

        def table(name: str) -> np.ndarray:
            return np.array(
                [
                    np.asarray(getattr(s.scaler, name), dtype=np.float64)[index]
                    for s, index in zip(self.spec.series, columns, strict=True)
                ]
            ).reshape(len(self.spec.series), len(self.features))

        self.scale, self.offset = table("scale"), table("min")
        self.data_min, self.data_max = table("data_min"), table("data_max")
        self.target_index = [self.features.index(t) for t in self.targets]

    @property
    def ids(self) -> tuple[str, ...]:
        """The series ids, by position."""
        return self.spec.ids

    def position(self, series_id: str) -> int:
        """The position of one id; DataError naming it when the model was not trained on it."""
        if series_id not in self.positions:
            self.spec.member(series_id)  # raises the error that names the id
        return self.positions[series_id]

    def index(self, series: object, n: int) -> np.ndarray:
        """Series positions (n,) of `n` windows from one id or an id per window.

        Ids are text: a number given as an id (17) is the id "17", never a position.
        """
        if isinstance(series, str):
            return np.full(n, self.position(series), np.int64)
        values = np.asarray(series)
        if values.ndim == 0:
            return np.full(n, self.position(str(values)), np.int64)
        if values.shape != (n,):
            raise ValueError(f"series has shape {values.shape}: give one id, or one per window")
        unique, inverse = np.unique(values.astype(str), return_inverse=True)
        return np.array([self.position(str(u)) for u in unique], np.int64)[inverse.reshape(-1)]

    def transform(self, x: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Windows (n, rows, features) scaled with each window's series numbers, float32."""
        scaled = x * self.scale[index][:, None, :]
        scaled += self.offset[index][:, None, :]  # in place, as MinMaxParams.transform
        return scaled.astype(np.float32)

    def inverse(self, y: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Scaled forecasts (n, horizon, targets) back to each window's series units."""
        t = self.target_index
        offset, scale = self.offset[index][:, None, t], self.scale[index][:, None, t]
        return (np.asarray(y, dtype=np.float64) - offset) / scale

    def out_of_range(self, rows: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Count, per feature, the values of rows (n, features) outside their series' range."""
        lo, hi = self.data_min[index], self.data_max[index]
        return ((rows < lo) | (rows > hi)).sum(axis=0)

    def widths(self, levels: tuple[float, ...]) -> np.ndarray:
        """Half-widths (series, levels, horizon, targets) of every series at `levels`.

        BundleError naming a series that has no intervals; UsageError for an uncalibrated level.
        """
        if levels not in self._widths:
            self._widths[levels] = np.stack(
                [intervals.widths(levels) for intervals in self._intervals()]
            )
        return self._widths[levels]

    def levels(self) -> tuple[float, ...]:
        """The levels the series calibrated (the first series'; the fleet calibrates them alike)."""
        return self._intervals()[0].levels

    def _intervals(self) -> list[Intervals]:
        found = []
        for s in self.spec.series:
            if s.intervals is None:
                raise BundleError(
                    f"series '{s.id}' of this fleet bundle has no prediction intervals (too few "
                    "validation origins to calibrate them); predict with --level none"
                )
            found.append(s.intervals)
        return found

    @property
    def has_intervals(self) -> bool:
        """Whether every series carries calibrated intervals."""
        return all(s.intervals is not None for s in self.spec.series)

    def notes(self, levels: tuple[float, ...]) -> list[str]:
        """Levels some series calibrated on too few origins, one line per level."""
        lines = []
        for level in levels:
            short = [
                s.id
                for s in self.spec.series
                if s.intervals is not None and level in s.intervals.short_levels
            ]
            if short:
                lines.append(
                    f"the {level_name(level)}% interval of {len(short)} series ("
                    + ", ".join(short[:5])
                    + (", ..." if len(short) > 5 else "")
                    + ") was calibrated on fewer origins than its conformal rank needs: it is "
                    "the largest error seen and may cover less than the level"
                )
        return lines
