"""Intervals that follow the data: conformal half-widths from the most recent errors seen.

In rolling prediction every new row is the truth of up to `horizon` earlier forecasts. Their
absolute errors go into a ring of the last `size` errors per horizon step, and each origin's
half-widths are the conformal quantiles of that ring (the bundle's own until it holds enough).
After a change of regime the ring fills with the new errors and coverage returns to the level
within about `size` origins (a rolling-window variant of adaptive conformal inference, Gibbs and
Candes 2021). Memory is `size x horizon x targets` errors, whatever the file's length.

The quantiles are recomputed once per `refresh_every(size)` rows of the grid (at the first origin
of each such stretch), not at every origin: sorting every ring at every origin cost more than
formatting the bounds, while between two refreshes at most a tenth of a ring is new.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from forecaster.intervals import fewest_origins, refresh_every

# Ring values sorted at a time (4 MB of float64), in arrays reused from block to block: the
# sorts stay in cache, and fresh arrays this size would cost page faults on every block.
SORT_VALUES = 1 << 19
NO_ORIGIN = np.iinfo(np.int64).min // 2


@functools.cache
def conformal_ranks(levels: tuple[float, ...], size: int) -> np.ndarray:
    """Rank (0-based) of each level among n = 0..size errors, -1 where n is too few; shared
    by the rings of every series (read only)."""
    ranks = np.array(
        [
            [
                min(math.ceil((n + 1) * lv - 1e-9), n) - 1 if n >= fewest_origins(lv) else -1
                for lv in levels
            ]
            for n in range(size + 1)
        ]
    ).reshape(size + 1, len(levels))
    ranks.flags.writeable = False
    return ranks


class RecentErrors:
    """The last `size` absolute errors per step and target, and half-widths computed from them."""

    def __init__(
        self, base: np.ndarray, levels: tuple[float, ...], size: int, every: int | None = None
    ):
        self.base = np.asarray(base, dtype=np.float64)  # (levels, horizon, targets)
        self.levels = levels
        self.size = size
        self.every = refresh_every(size) if every is None else every
        # The widths of the last refresh and its stretch of the grid (slot // every).
        self.widths = self.base.copy()
        self.stretch = NO_ORIGIN
        _, horizon, targets = self.base.shape
        self.horizon = horizon
        # The last `size` errors per step in time order, NaN before the first (sorts last).
        self.recent = np.full((horizon, size, targets), np.nan)
        self.count = np.zeros(horizon, np.int64)  # errors recorded per step, all time
        self.pending = np.zeros((horizon, horizon, targets))  # forecasts awaiting their truth
        self.pending_origin = np.full(horizon, NO_ORIGIN)  # slot origin % horizon
        self._ranks = conformal_ranks(levels, size)

    def run(
        self,
        slots: np.ndarray,
        actual: np.ndarray,
        point: np.ndarray,
        wanted: np.ndarray | None = None,
    ) -> np.ndarray:
        """Half-widths (levels, n, horizon, targets) for n origins in time order.

        `slots` are the grid slots of each window's last row, `actual` the targets in that row
        (n, targets) and `point` the forecasts (n, horizon, targets). An origin's widths use the
        errors known up to the last row of the first origin of its stretch of the grid. With
        `wanted` (positions), only those origins' widths are filled; the others are 0.
        """
        slots = np.asarray(slots, dtype=np.int64)
        n, horizon, size = len(slots), self.horizon, self.size
        shape = (len(self.levels), *np.shape(point))
        out = np.empty(shape) if wanted is None else np.zeros(shape)
        if n == 0:
            return out
        # Each origin's refresh: the first origin of its stretch, -1 for the one held.
        stretch = slots // self.every
        fresh = np.empty(n, bool)
        fresh[0] = stretch[0] != self.stretch
        np.not_equal(stretch[1:], stretch[:-1], out=fresh[1:])
        refresh = np.maximum.accumulate(np.where(fresh, np.arange(n), -1))
        needed = refresh if wanted is None else refresh[wanted]
        # The last refresh is always computed: the next call's first origins may share it.
        leaders = np.union1d(needed[needed >= 0], refresh[-1:][refresh[-1:] >= 0])
        # The errors each origin's last row reveals, (n, horizon, targets), and which exist.
        errors, known = self._errors(slots, np.asarray(actual), np.asarray(point))
        # Per step, the errors in time order: the ring's last `size` (NaN where it has fewer,
        # which sorts last), then this batch's. Origin i's ring is the `size` from seen[i].
        seen = np.cumsum(known, axis=0)
        added = seen[-1]
        sequence = np.empty((horizon, size + n, errors.shape[2]))
        sequence[:, :size] = self.recent
        if known.all():  # every row reveals an error per step: they follow the ring in order
            sequence[:, size:] = errors.swapaxes(0, 1)
        else:
            sequence[:, size:] = np.nan
            origin, step = np.nonzero(known)
            sequence[step, size - 1 + seen[origin, step]] = errors[origin, step]
        ranks = self._ranks[np.minimum(self.count + seen[leaders], size)]  # (m, horizon, levels)
        computed = np.empty((len(self.levels), len(leaders), horizon, errors.shape[2]))
        self._rings(sequence, seen[leaders], ranks, computed)
        # Every origin takes its refresh's widths; before the first refresh, the held ones.
        table = np.concatenate([computed, self.widths[:, None]], axis=1)
        where = np.searchsorted(leaders, refresh)
        where[refresh < 0] = len(leaders)
        if wanted is None:
            np.take(table, where, axis=1, out=out)
        else:
            out[:, wanted] = table[:, where[wanted]]
        self.widths = table[:, where[-1]]
        self.stretch = int(stretch[-1])
        self._keep(sequence, added, slots, point)
        return out

    def _rings(
        self, sequence: np.ndarray, seen: np.ndarray, ranks: np.ndarray, out: np.ndarray
    ) -> None:
        """Fill `out` with the quantiles of the rings that end `seen` errors into `sequence`,
        a block of them at a time."""
        horizon, targets, size, n = sequence.shape[0], sequence.shape[2], self.size, len(seen)
        windows = sliding_window_view(sequence, size, axis=1)  # (horizon, n + 1, targets, size)
        block = max(1, SORT_VALUES // (horizon * size * targets))
        rings = np.empty((horizon, min(block, n), targets, size))
        for a in range(0, n, block):
            b = min(a + block, n)
            rank = ranks[a:b]
            ring = rings[:, : b - a]
            _gather(windows, seen[a:b], ring)
            ring.sort(axis=-1)
            picked = np.take_along_axis(ring, np.maximum(rank.swapaxes(0, 1), 0)[:, :, None], -1)
            base = np.moveaxis(self.base, 0, -1)[:, None]  # (horizon, 1, targets, levels)
            widths = np.where(rank.swapaxes(0, 1)[:, :, None] >= 0, picked, base)
            out[:, a:b] = np.moveaxis(widths, (3, 0), (0, 2))

    def _errors(
        self, slots: np.ndarray, actual: np.ndarray, point: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """|truth - forecast| for each row and step whose forecast was made (by an earlier
        call's origins or this one's), and a mask of which were."""
        held = self.pending_origin != NO_ORIGIN
        order = np.argsort(self.pending_origin[held])
        origins = np.concatenate([self.pending_origin[held][order], slots + 1])
        forecasts = np.concatenate([self.pending[held][order], point])
        # Row s is step k of origin s - k, made at an earlier row when it exists.
        horizon, n, held_count = self.horizon, len(slots), len(origins) - len(slots)
        steady = slots[-1] - slots[0] == n - 1 and held_count == horizon
        if steady and origins[0] == slots[0] - horizon + 1:
            # No gap here or just before: row i's step k is forecasts[horizon - 1 + i - k],
            # the diagonals of the forecasts' sliding windows, read without a copy.
            windows = sliding_window_view(forecasts, horizon, axis=0)[:n, :, :, ::-1]
            made = np.diagonal(windows, axis1=1, axis2=3).swapaxes(1, 2)
            return np.abs(actual[:, None, :] - made), np.ones((n, horizon), bool)
        steps = np.arange(horizon)
        wanted = slots[:, None] - steps[None, :]
        if slots[-1] - slots[0] == len(slots) - 1:  # no gap: this call's origin i - k - 1
            found = (
                np.arange(len(slots))[:, None] - steps[None, :] + (len(origins) - len(slots) - 1)
            )
            early = found < len(origins) - len(slots)
            found[early] = np.searchsorted(origins, wanted[early])
        else:
            found = np.searchsorted(origins, wanted)
        found = np.minimum(found, len(origins) - 1)
        known = origins[found] == wanted
        made = forecasts[found, np.arange(self.horizon)[None, :]]  # (n, horizon, targets)
        return np.abs(actual[:, None, :] - made), known

    def _keep(
        self, sequence: np.ndarray, added: np.ndarray, slots: np.ndarray, point: np.ndarray
    ) -> None:
        """Carry the last `size` errors per step and the last forecasts to the next call."""
        last = added[:, None] + np.arange(self.size)[None, :]  # (horizon, size) in `sequence`
        self.recent = np.take_along_axis(sequence, last[:, :, None], axis=1)
        self.count += added
        for i in range(max(len(slots) - self.horizon, 0), len(slots)):
            origin = int(slots[i]) + 1
            self.pending[origin % self.horizon] = point[i]
            self.pending_origin[origin % self.horizon] = origin


def _gather(windows: np.ndarray, seen: np.ndarray, ring: np.ndarray) -> None:
    """ring[step, i] = windows[step, seen[i, step]]: a slice when the rings are consecutive."""
    n = len(seen)
    # A slice where each origin saw exactly one error more than the one before.
    steady = (seen[-1] - seen[0] == n - 1) & (np.diff(seen, axis=0) > 0).all(axis=0)
    for step in range(len(ring)):
        if steady[step]:  # a new error at every origin
            first = int(seen[0, step])
            ring[step] = windows[step, first : first + n]
        else:
            ring[step] = windows[step, seen[:, step]]
