"""The series a search trains on: split and scaled once, windowed per window length."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from forecaster.config import WindowConfig
from forecaster.errors import DataError
from forecaster.model.windows import Split, Windows, make_windows
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
    _cache: dict[tuple[str, int], Windows] = field(default_factory=dict, repr=False)

    @property
    def n_features(self) -> int:
        """Input columns."""
        return int(self.scaled.shape[1])

    @property
    def n_targets(self) -> int:
        """Forecast columns."""
        return len(self.data.targets)

    def train(self, window: int) -> Windows:
        """Training windows of this length (as `forecaster train` builds them)."""
        return self._cached("train", window, lambda: self._part("train", window))

    def test(self, window: int) -> Windows:
        """Test windows of this length (as `forecaster train` builds them)."""
        return self._cached("test", window, lambda: self._part("test", window))

    def val(self, window: int) -> Windows:
        """Validation windows of this length at the shared origins."""

        def build() -> Windows:
            origins = self.val_origins
            x = self.scaled[origins[:, None] + np.arange(-window, 0)]
            y = self.scaled[origins[:, None] + np.arange(self.horizon)]
            y = y[:, :, list(self.data.target_index)]
            return Windows(x.astype(np.float32), y.astype(np.float32), origins)

        return self._cached("val", window, build)

    def _part(self, name: str, window: int) -> Windows:
        return make_windows(
            self.scaled,
            self.data.segments,
            self.split.part(name),
            WindowConfig(window, self.horizon),
            self.data.target_index,
        )

    def _cached(self, part: str, window: int, build: Callable[[], Windows]) -> Windows:
        key = (part, window)
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
    data: SensorData, split: Split, horizon: int, max_window: int
) -> TuningData:
    """Fit the scaler on the training part, scale, and find the shared validation origins."""
    from forecaster.model.windows import fit_scaler, model_inputs

    scaler = fit_scaler(data, split)
    scaled = model_inputs(data, scaler, ())  # as `forecaster train` without --calendar
    start, stop = split.val
    origins = [
        np.arange(max(seg_start + max_window, start), min(seg_stop, stop) - horizon + 1)
        for seg_start, seg_stop in data.segments
    ]
    val_origins = np.concatenate(origins).astype(np.int64) if origins else np.empty(0, np.int64)
    if len(val_origins) == 0:
        raise DataError(
            f"the validation part of {data.path} has no origin with {max_window} steps of history "
            f"and {horizon} steps ahead without a long gap; use shorter --windows or more data"
        )
    return TuningData(data, split, scaler, scaled, horizon, max_window, val_origins)


def check_windows_fit(space: SearchSpace, data: SensorData, split: Split, horizon: int) -> None:
    """Every window must leave training windows and fit the validation and test parts."""
    window = max(space.windows)
    for name, label in (("train", "training"), ("val", "validation"), ("test", "test")):
        rows = longest_run(data, split.part(name))
        if rows < window + horizon:
            raise DataError(
                f"window {window} is too long for {data.path}: the {label} part has at most "
                f"{rows} consecutive rows, fewer than window + horizon = {window + horizon}; drop "
                "it from --windows or use a longer file"
            )
