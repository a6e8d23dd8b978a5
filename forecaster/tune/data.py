"""The series a search trains on: split and scaled once, windowed per window length."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from forecaster.bundle import SeasonalInputs
from forecaster.config import SplitConfig, WindowConfig
from forecaster.data.fleet import series_channels
from forecaster.data.lags import lag_channels, lag_seasons
from forecaster.errors import DataError
from forecaster.model.windows import Split, Windows, make_windows, window_origins
from forecaster.tune.space import SearchSpace

if TYPE_CHECKING:
    from forecaster.data.load import SensorData
    from forecaster.scaling import MinMaxParams


@dataclass
class TuningData:
    """The series split and scaled once, windowed on demand for any window length.

    Validation windows of every length end at the same origins (those with `max_window` steps of
    history in one segment and `horizon` steps ahead inside the validation part), so every window
    length is scored on the same targets. A long window may read rows of the training part as
    input: they are the past of the validation targets, not a leak.
    """

    data: SensorData
    split: Split
    scaler: MinMaxParams
    scaled: np.ndarray
    horizon: int
    max_window: int
    val_origins: np.ndarray
    # The decomposition reference's numbers and the scaled rows with its channels appended,
    # for trials whose residual is `decomposition` (None when the space has no such trial).
    seasonal: SeasonalInputs | None = None
    with_seasonal: np.ndarray | None = field(default=None, repr=False)
    # The data's seasons: a window shorter than one gets its lag channels, as in `train --lags`.
    seasons: tuple[int, ...] = ()
    _cache: dict[tuple[str, int, bool], Windows] = field(default_factory=dict, repr=False)

    def lags(self, window: int) -> tuple[int, ...]:
        """The seasons fed as lag channels to a trial with this window."""
        return lag_seasons(self.seasons, window, self.horizon)

    def lag_channels(self, window: int) -> list[int]:
        """Input channels of those lags: right after the sensors, lag-major then target."""
        first = len(self.data.features)
        return list(range(first, first + len(self.lags(window)) * self.n_targets))

    def inputs(self, residual: str = "none", window: int = 0) -> np.ndarray:
        """The scaled rows a trial with this residual and window reads."""
        base = self.scaled
        if residual == "decomposition":
            if self.with_seasonal is None:
                raise DataError(
                    "the search data has no seasonal channels for residual=decomposition; "
                    "include decomposition in --residual before the data is prepared"
                )
            base = self.with_seasonal
        lags = self.lags(window) if window else ()
        if not lags:
            return base
        first = len(self.data.features)
        targets = base[:, list(self.data.target_index)]
        channels = lag_channels(targets, lags, self.horizon)
        return np.concatenate([base[:, :first], channels, base[:, first:]], axis=1)

    def n_features(self, residual: str = "none", window: int = 0) -> int:
        """Input columns of a trial with this residual and window."""
        return int(self.inputs(residual, window).shape[1])

    @property
    def n_targets(self) -> int:
        """Forecast columns."""
        return len(self.data.targets)

    def train(self, window: int, residual: str = "none") -> Windows:
        """Training windows of this length (as `forecaster train` builds them)."""
        return self._cached(
            "train", window, residual, lambda: self._part("train", window, residual)
        )

    def test(self, window: int, residual: str = "none") -> Windows:
        """Test windows of this length (as `forecaster train` builds them)."""
        return self._cached("test", window, residual, lambda: self._part("test", window, residual))

    def val(self, window: int, residual: str = "none") -> Windows:
        """Validation windows of this length at the shared origins."""

        def build() -> Windows:
            origins, scaled = self.val_origins, self.inputs(residual, window)
            x = scaled[origins[:, None] + np.arange(-window, 0)]
            y = scaled[origins[:, None] + np.arange(self.horizon)]
            y = y[:, :, list(self.data.target_index)]
            # A lag reaching into a gap leaves its origin out (the only NaN a window can hold).
            keep = ~np.isnan(x).any(axis=(1, 2))
            return Windows(x[keep].astype(np.float32), y[keep].astype(np.float32), origins[keep])

        return self._cached("val", window, residual, build)

    def _part(self, name: str, window: int, residual: str) -> Windows:
        return make_windows(
            self.inputs(residual, window),
            self.data.segments,
            self.split.part(name),
            WindowConfig(window, self.horizon),
            self.data.target_index,
        )

    def _cached(
        self, part: str, window: int, residual: str, build: Callable[[], Windows]
    ) -> Windows:
        key = (part, window, residual == "decomposition")
        if key not in self._cache:
            # Keep only the current window length's arrays: long series have large windows.
            for old in [k for k in self._cache if k[1] != window]:
                del self._cache[old]
            self._cache[key] = build()
        return self._cache[key]


def longest_run(data: SensorData, rows: tuple[int, int]) -> int:
    """The most consecutive complete rows inside `rows`."""
    start, stop = rows
    return max(
        (min(e, stop) - max(s, start) for s, e in data.segments if min(e, stop) > max(s, start)),
        default=0,
    )


def prepare_tuning_data(
    data: SensorData,
    split: Split,
    horizon: int,
    max_window: int,
    seasonal: SeasonalInputs | None = None,
    seasons: tuple[int, ...] = (),
) -> TuningData:
    """Fit the scaler on the training part, scale, and find the shared validation origins.

    With `seasonal` (the decomposition baseline's numbers), trials with residual=decomposition
    get its channels appended, as `forecaster train --residual decomposition` does. With
    `seasons`, a trial whose window is shorter than a season gets its lag channels, as
    `forecaster train --lags` does.
    """
    from forecaster.model.windows import fit_scaler, model_inputs

    scaler = fit_scaler(data, split)
    scaled = model_inputs(data, scaler, ())  # as `forecaster train` without --calendar
    with_seasonal = None if seasonal is None else model_inputs(data, scaler, (), seasonal)
    start, stop = split.val
    origins = [
        np.arange(max(seg_start + max_window, start), min(seg_stop, stop) - horizon + 1)
        for seg_start, seg_stop in data.segments
    ]
    val_origins = np.concatenate(origins).astype(np.int64) if origins else np.empty(0, np.int64)
    if len(val_origins) == 0:
        raise DataError(
            f"the validation part of {data.name} has no origin with {max_window} steps of history "
            f"and {horizon} steps ahead without a long gap; use shorter --windows or more data"
        )
    return TuningData(
        data,
        split,
        scaler,
        scaled,
        horizon,
        max_window,
        val_origins,
        seasonal,
        with_seasonal,
        seasons,
    )


def decomposition_inputs(
    data: SensorData, split: Split, seasons: tuple[int, ...], horizon: int
) -> SeasonalInputs:
    """The decomposition baseline fitted on the training part, as `forecaster train` fits it,
    turned into the decomposition reference's numbers."""
    from forecaster.evaluation.decomposition import fit_decomposition, seasonal_inputs
    from forecaster.model.windows import check_timestamps

    check_timestamps(data)
    train = data.frame[list(data.targets)].to_numpy(np.float64)[slice(*split.train)]
    specs = [fit_decomposition(train[:, i], seasons) for i in range(train.shape[1])]
    return seasonal_inputs(specs, horizon)


def check_windows_fit(space: SearchSpace, data: SensorData, split: Split, horizon: int) -> None:
    """Every window must leave training windows and fit the validation and test parts."""
    window = max(space.windows)
    for name, label in (("train", "training"), ("val", "validation"), ("test", "test")):
        rows = longest_run(data, split.part(name))
        if rows < window + horizon:
            raise DataError(
                f"window {window} is too long for {data.name}: the {label} part has at most "
                f"{rows} consecutive rows, fewer than window + horizon = {window + horizon}; drop "
                "it from --windows or use a longer file"
            )


@dataclass
class PooledTuningData:
    """A fleet's series, each split and scaled alone, windowed together for a global model.

    Offers what a trial reads from `TuningData`. A trial trains on at most `per_part` windows
    drawn evenly from every series (a fixed seeded draw per window length), and is scored on as
    many validation windows, so a trial of 1,000 series costs what one of a few does.
    """

    members: tuple[TuningData, ...]
    per_part: int
    seed: int = 0
    series_ids: bool = False  # each window's series as one-hot channels after the sensors, lags
    _cache: dict[tuple[str, int, str], Windows] = field(default_factory=dict, repr=False)

    @property
    def data(self) -> SensorData:
        """The first series: its columns are every series'."""
        return self.members[0].data

    @property
    def horizon(self) -> int:
        """Steps forecast."""
        return self.members[0].horizon

    @property
    def seasons(self) -> tuple[int, ...]:
        """The fleet's seasons, fed as lags."""
        return self.members[0].seasons

    @property
    def seasonal(self) -> SeasonalInputs | None:
        """The decomposition reference as trials build it: the fleet's shared smoothing."""
        return self.members[0].seasonal

    @property
    def n_targets(self) -> int:
        """Forecast columns."""
        return self.members[0].n_targets

    @property
    def val_origins(self) -> np.ndarray:
        """Every series' shared validation origins, one after another."""
        return np.concatenate([m.val_origins for m in self.members])

    def lags(self, window: int) -> tuple[int, ...]:
        """The seasons fed as lag channels to a trial with this window."""
        return self.members[0].lags(window)

    def lag_channels(self, window: int) -> list[int]:
        """Input channels of those lags."""
        return self.members[0].lag_channels(window)

    def n_features(self, residual: str = "none", window: int = 0) -> int:
        """Input columns of a trial with this residual and window."""
        ids = len(self.members) if self.series_ids else 0
        return self.members[0].n_features(residual, window) + ids

    def train(self, window: int, residual: str = "none") -> Windows:
        """A draw of training windows from every series."""
        return self._pooled("train", window, residual)

    def val(self, window: int, residual: str = "none") -> Windows:
        """A draw of validation windows from every series, at each series' shared origins."""
        return self._pooled("val", window, residual)

    def test(self, window: int, residual: str = "none") -> Windows:
        """A draw of test windows from every series."""
        return self._pooled("test", window, residual)

    def _pooled(self, part: str, window: int, residual: str) -> Windows:
        key = (part, window, residual)
        if key not in self._cache:
            for old in [k for k in self._cache if k[1] != window]:
                del self._cache[old]
            rng = np.random.default_rng(self.seed)
            share = max(1, self.per_part // len(self.members))
            xs, ys, origins = [], [], []
            for k, member in enumerate(self.members):
                found = (
                    member.val_origins
                    if part == "val"
                    else window_origins(
                        member.data.segments,
                        member.split.part(part),
                        WindowConfig(window, self.horizon),
                    )
                )
                if len(found) > share:
                    found = np.sort(rng.choice(found, share, replace=False))
                scaled = member.inputs(residual, window)
                if self.series_ids:
                    at = len(member.data.features) + len(member.lags(window)) * self.n_targets
                    ids = series_channels(np.array([k]), len(self.members), len(scaled))[0]
                    scaled = np.concatenate([scaled[:, :at], ids, scaled[:, at:]], axis=1)
                x = scaled[found[:, None] + np.arange(-window, 0)]
                y = scaled[found[:, None] + np.arange(self.horizon)]
                keep = ~np.isnan(x).any(axis=(1, 2))
                xs.append(x[keep].astype(np.float32))
                ys.append(y[keep][:, :, list(member.data.target_index)].astype(np.float32))
                origins.append(found[keep])
            self._cache[key] = Windows(
                np.concatenate(xs), np.concatenate(ys), np.concatenate(origins)
            )
        return self._cache[key]


def prepare_pooled_tuning_data(
    series: tuple[SensorData, ...],
    horizon: int,
    max_window: int,
    split_config: SplitConfig,
    seasons: tuple[int, ...],
    per_part: int,
    seed: int,
    seasonal: dict[str, SeasonalInputs] | None = None,
    series_ids: bool = False,
) -> PooledTuningData:
    """Each series split, scaled on its own training part and given its validation origins;
    with `seasonal`, each series' decomposition channels for the trials that use them."""
    from forecaster.model.windows import split_rows

    members = tuple(
        prepare_tuning_data(
            data,
            split_rows(data.n_rows, split_config),
            horizon,
            max_window,
            None if seasonal is None else seasonal[data.series or ""],
            seasons,
        )
        for data in series
    )
    return PooledTuningData(members, per_part, seed, series_ids)


# What a search's trials read: one series, or a fleet's series pooled.
SearchData = TuningData | PooledTuningData
