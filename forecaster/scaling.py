"""Min-max scaling applied with plain numpy from fitted numbers stored in a bundle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class MinMaxParams:
    """The fitted numbers of a min-max scaler: x_scaled = x * scale + min (scikit-learn's form)."""

    columns: tuple[str, ...]
    data_min: tuple[float, ...]
    data_max: tuple[float, ...]
    scale: tuple[float, ...]
    min: tuple[float, ...]

    def transform(self, x: np.ndarray, columns: tuple[str, ...] | None = None) -> np.ndarray:
        """Scale values whose last axis holds `columns` (default: all columns, in order)."""
        scale, offset = self._pick(columns)
        scaled = x * scale
        scaled += offset  # in place: a window batch is large, and one float64 copy is enough
        return scaled.astype(np.float32)

    def inverse(self, x: np.ndarray, columns: tuple[str, ...] | None = None) -> np.ndarray:
        """Undo `transform` for values whose last axis holds `columns`."""
        scale, offset = self._pick(columns)
        return (np.asarray(x, dtype=np.float64) - offset) / scale

    def scales(self, columns: tuple[str, ...]) -> np.ndarray:
        """The scale of each of `columns`: how far one original unit moves its scaled value."""
        return np.asarray(self.scale)[self._index(columns)]

    def out_of_range(self, x: np.ndarray, columns: tuple[str, ...] | None = None) -> np.ndarray:
        """Count, per column, the values outside the range seen in training."""
        idx = self._index(columns)
        lo = np.asarray(self.data_min)[idx]
        hi = np.asarray(self.data_max)[idx]
        flat = np.asarray(x, dtype=np.float64).reshape(-1, len(idx))
        return ((flat < lo) | (flat > hi)).sum(axis=0)

    def _index(self, columns: tuple[str, ...] | None) -> list[int]:
        names = columns if columns is not None else self.columns
        return [self.columns.index(c) for c in names]

    def _pick(self, columns: tuple[str, ...] | None) -> tuple[np.ndarray, np.ndarray]:
        idx = self._index(columns)
        return np.asarray(self.scale)[idx], np.asarray(self.min)[idx]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "columns": list(self.columns),
            "data_min": list(self.data_min),
            "data_max": list(self.data_max),
            "scale": list(self.scale),
            "min": list(self.min),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MinMaxParams:
        """Read the form written by `to_dict`."""
        return cls(
            columns=tuple(data["columns"]),
            data_min=tuple(float(v) for v in data["data_min"]),
            data_max=tuple(float(v) for v in data["data_max"]),
            scale=tuple(float(v) for v in data["scale"]),
            min=tuple(float(v) for v in data["min"]),
        )
