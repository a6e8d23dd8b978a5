"""A fleet's windows pooled for one global model: each series split and scaled on its own.

Every series is split chronologically and min-max scaled on its own training part (its levels
and ranges differ; the model sees each in [0, 1]), windowed exactly as one series would be, and
the windows of all series are stacked. A series that cannot give windows to every part is
skipped with the reason, not fatal. The decomposition reference, when asked for, reads each
series' own seasonal profiles and smooths with one set of parameters shared by the fleet (the
model holds them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from forecaster.bundle import SeasonalInputs
from forecaster.config import SplitConfig, WindowConfig
from forecaster.data.fleet import Fleet, Skipped, series_channels
from forecaster.data.load import SensorData
from forecaster.errors import DataError
from forecaster.model.windows import PARTS, Prepared, Windows, prepare


@dataclass(frozen=True)
class PooledPrepared:
    """Every kept series prepared alone, and their windows stacked per part.

    It offers what `train_model` reads from a `Prepared`. The members keep their validation and
    test windows (for per-series intervals and evaluation); their training windows live only in
    the pooled set, so a large fleet holds them once.
    """

    members: tuple[Prepared, ...]
    ids: tuple[str, ...]
    windows: dict[str, Windows]  # pooled; origins are rows of each window's own series
    series_index: dict[str, np.ndarray]  # per part: the member each pooled window comes from
    window: WindowConfig
    lags: tuple[int, ...]
    skipped: tuple[Skipped, ...] = ()

    @property
    def seasonal(self) -> SeasonalInputs | None:
        """The decomposition reference as the model builds it: the fleet's shared smoothing
        (each member's channels come from its own profiles)."""
        return self.members[0].seasonal

    @property
    def data(self) -> SensorData:
        """The first series: its columns and targets are every series'."""
        return self.members[0].data

    @property
    def calendar(self) -> tuple[str, ...]:
        """Calendar cycles appended as channels (the same for every series)."""
        return self.members[0].calendar

    @property
    def sensor_channels(self) -> int:
        """Channels the window normalization applies to."""
        return self.members[0].sensor_channels

    @property
    def lag_channels(self) -> list[int]:
        """Input channels of the seasonal lags."""
        return self.members[0].lag_channels

    def part_of(self, name: str, member: int) -> Windows:
        """One series' windows of a part ('val' and 'test' are kept per member)."""
        return self.members[member].windows[name]


def with_series_id(prepared: Prepared, position: int, n_series: int) -> Prepared:
    """A series' rows and windows with its one-hot id as channels right after the sensors and
    their lags: the calendar and decomposition channels stay last, where the model reads them,
    and the window normalization, which covers only the sensors and lags, leaves them alone."""
    at = prepared.sensor_channels

    def insert(x: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return np.concatenate([x[..., :at], ids, x[..., at:]], axis=-1)

    windows = {}
    for name, w in prepared.windows.items():
        extra = series_channels(np.full(len(w), position), n_series, w.x.shape[1])
        windows[name] = Windows(insert(w.x, extra), w.y, w.origins)
    rows = series_channels(np.array([position]), n_series, len(prepared.scaled))[0]
    return dataclasses.replace(prepared, scaled=insert(prepared.scaled, rows), windows=windows)


def prepare_pooled(
    fleet: Fleet,
    split: SplitConfig,
    window: WindowConfig,
    lags: tuple[int, ...] = (),
    seasonal: dict[str, SeasonalInputs] | None = None,
) -> PooledPrepared:
    """Prepare every series of `fleet` alone and pool their windows; skip those too short.

    `seasonal` gives each series its decomposition reference's channels (one smoothing for
    all, each series' own profiles). With `window.series_ids` every row also carries its
    series as one-hot channels (after the sensors and their lags).
    """
    members: list[Prepared] = []
    skipped: list[Skipped] = []
    for data in fleet:
        try:
            own = None if seasonal is None else seasonal[data.series or ""]
            members.append(prepare(data, split, window, own, lags))
        except DataError as exc:
            skipped.append(Skipped(data.series or "", str(exc)))
    if not members:
        reasons = "; ".join(s.reason for s in skipped[:2])
        raise DataError(f"no series of {fleet.path} has enough rows to train on ({reasons})")
    if window.series_ids:
        members = [with_series_id(m, i, len(members)) for i, m in enumerate(members)]
    windows: dict[str, Windows] = {}
    index: dict[str, np.ndarray] = {}
    for name in PARTS:
        parts = [m.windows[name] for m in members]
        windows[name] = Windows(
            np.concatenate([w.x for w in parts]),
            np.concatenate([w.y for w in parts]),
            np.concatenate([w.origins for w in parts]),
        )
        index[name] = np.repeat(np.arange(len(parts)), [len(w) for w in parts])
    empty_train = Windows(
        windows["train"].x[:0], windows["train"].y[:0], windows["train"].origins[:0]
    )
    members = [dataclasses.replace(m, windows={**m.windows, "train": empty_train}) for m in members]
    return PooledPrepared(
        members=tuple(members),
        ids=tuple(m.data.series or "" for m in members),
        windows=windows,
        series_index=index,
        window=window,
        lags=lags,
        skipped=(*fleet.skipped, *skipped),
    )
