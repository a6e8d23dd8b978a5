"""Intervals that follow the data: conformal half-widths from the most recent errors seen.

In rolling prediction every new row is the truth of up to `horizon` earlier forecasts. Their
absolute errors go into a ring of the last `size` errors per horizon step, and each origin's
half-widths are the conformal quantiles of that ring (the bundle's own until it holds enough).
After a change of regime the ring fills with the new errors and coverage returns to the level
within about `size` origins (a rolling-window variant of adaptive conformal inference, Gibbs and
Candes 2021). Memory is `size x horizon x targets` errors, whatever the file's length.
"""

from __future__ import annotations

import math

import numpy as np

from forecaster.intervals import fewest_origins


class RecentErrors:
    """The last `size` absolute errors per step and target, and half-widths computed from them."""

    def __init__(self, base: np.ndarray, levels: tuple[float, ...], size: int):
        self.base = np.asarray(base, dtype=np.float64)  # (levels, horizon, targets)
        self.levels = levels
        self.size = size
        _, horizon, targets = self.base.shape
        self.horizon = horizon
        self.errors = np.zeros((size, horizon, targets))
        self.count = np.zeros(horizon, np.int64)  # errors recorded per step, all time
        self.pending = np.zeros((horizon, horizon, targets))  # forecasts awaiting their truth
        self.pending_origin = np.full(horizon, np.iinfo(np.int64).min // 2)
        # Conformal rank of each level among n recent errors (0-based), or -1 when n is too few.
        self._ranks = np.array(
            [
                [
                    min(math.ceil((n + 1) * lv - 1e-9), n) - 1 if n >= fewest_origins(lv) else -1
                    for lv in levels
                ]
                for n in range(size + 1)
            ]
        )

    def run(self, slots: np.ndarray, actual: np.ndarray, point: np.ndarray) -> np.ndarray:
        """Half-widths (levels, n, horizon, targets) for n origins in time order.

        `slots` are the grid slots of each window's last row, `actual` the targets in that row
        (n, targets) and `point` the forecasts (n, horizon, targets). An origin's widths use the
        errors known up to its last row only.
        """
        out = np.empty((len(self.levels), *point.shape))
        for i, slot in enumerate(np.asarray(slots, dtype=np.int64)):
            self._observe(int(slot), actual[i])
            out[:, i] = self._widths()
            origin = int(slot) + 1
            self.pending[origin % self.horizon] = point[i]
            self.pending_origin[origin % self.horizon] = origin
        return out

    def _observe(self, row: int, actual: np.ndarray) -> None:
        steps = row - self.pending_origin
        slots = np.flatnonzero((steps >= 0) & (steps < self.horizon))
        steps = steps[slots]  # distinct: one pending origin per step
        positions = self.count[steps] % self.size
        self.errors[positions, steps] = np.abs(actual - self.pending[slots, steps])
        self.count[steps] += 1

    def _widths(self) -> np.ndarray:
        widths = self.base.copy()
        if self.count.min() >= self.size:
            # The usual case once the ring is full: one sort for every step and target.
            ordered = np.sort(self.errors, axis=0)
            for j, rank in enumerate(self._ranks[self.size]):
                if rank >= 0:
                    widths[j] = ordered[rank]
            return widths
        for step in range(self.horizon):
            n = int(min(self.count[step], self.size))
            ranks = self._ranks[n]
            if n == 0 or (ranks < 0).all():
                continue
            ordered = np.sort(self.errors[:n, step], axis=0)
            for j, rank in enumerate(ranks):
                if rank >= 0:
                    widths[j, step] = ordered[rank]
        return widths
