"""Chronological split, training-only scaling and sliding windows, checked as properties."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from forecaster.config import SplitConfig, WindowConfig
from forecaster.data.load import LoadReport, SensorData, nan_runs
from forecaster.errors import ConfigError, DataError
from forecaster.model.windows import (
    fit_scaler,
    make_windows,
    prepare,
    rows_needed,
    split_rows,
)
from forecaster.scaling import MinMaxParams

finite = st.floats(-1e6, 1e6, allow_nan=False, width=64)


def sensor_data(values: np.ndarray, targets: tuple[str, ...] = ("a",)) -> SensorData:
    columns = tuple("abcdefgh"[: values.shape[1]])
    frame = pd.DataFrame(values, columns=list(columns))
    complete = ~np.isnan(values).any(axis=1)
    segments = tuple((s, s + n) for s, n in nan_runs(complete))
    return SensorData(Path("mem.csv"), frame, columns, targets, None, None, segments, LoadReport())


@given(hnp.arrays(np.float64, st.tuples(st.integers(2, 40), st.integers(1, 4)), elements=finite))
def test_scaler_round_trip(values):
    data = sensor_data(values)
    split = split_rows(len(values), SplitConfig(0.8, 0.1, 0.1))
    params = fit_scaler(data, split)
    back = params.inverse(params.transform(values).astype(np.float64))
    # float32 scaled values carry ~7 significant digits of the column's range.
    span = np.ptp(values, axis=0) + 1.0
    np.testing.assert_allclose(back, values, atol=float(np.max(span)) * 1e-6)


def test_constant_column_is_scaled_without_dividing_by_zero():
    values = np.column_stack([np.arange(10.0), np.full(10, 7.0)])
    params = fit_scaler(sensor_data(values), split_rows(10, SplitConfig(0.6, 0.2, 0.2)))
    scaled = params.transform(values)
    assert np.isfinite(scaled).all()
    np.testing.assert_allclose(params.inverse(scaled)[:, 1], 7.0)


def test_values_outside_the_training_range_are_kept_and_counted():
    values = np.arange(20.0).reshape(-1, 1)
    params = fit_scaler(sensor_data(values), split_rows(20, SplitConfig(0.5, 0.25, 0.25)))
    scaled = params.transform(values)
    assert scaled.max() > 1.5  # not clipped
    assert params.out_of_range(values).tolist() == [10]


@st.composite
def series_with_gaps(draw):
    n = draw(st.integers(30, 120))
    values = np.arange(n * 2, dtype=np.float64).reshape(n, 2)
    for start in draw(st.lists(st.integers(0, n - 1), max_size=4)):
        values[start : start + draw(st.integers(1, 5)), draw(st.integers(0, 1))] = np.nan
    return values


@settings(max_examples=60, deadline=None)
@given(series_with_gaps(), st.integers(1, 8), st.integers(1, 4))
def test_windows_align_and_never_cross_a_gap_or_split(values, window, horizon):
    data = sensor_data(values, targets=("b",))
    config = WindowConfig(window, horizon)
    split = split_rows(len(values), SplitConfig(0.6, 0.2, 0.2))
    scaled = values  # identity scaling makes rows easy to check
    for part in ("train", "val", "test"):
        start, stop = split.part(part)
        win = make_windows(scaled, data.segments, (start, stop), config, data.target_index)
        for x, y, origin in zip(win.x, win.y, win.origins, strict=True):
            np.testing.assert_array_equal(x, values[origin - window : origin])
            np.testing.assert_array_equal(y[:, 0], values[origin : origin + horizon, 1])
            assert start <= origin - window and origin + horizon <= stop
            assert not np.isnan(values[origin - window : origin + horizon]).any()
        # Every origin that fits inside a complete stretch of the part is used.
        expected = sum(
            max(0, min(e, stop) - max(s, start) - config.span + 1) for s, e in data.segments
        )
        assert len(win) == expected


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, (60, 2), elements=finite), st.floats(-1e9, 1e9))
def test_scaler_never_sees_validation_or_test_rows(values, junk):
    split = split_rows(60, SplitConfig())
    before = fit_scaler(sensor_data(values), split)
    changed = values.copy()
    changed[split.val[0] :] = junk
    assert fit_scaler(sensor_data(changed), split) == before


def test_split_is_chronological_and_covers_every_row():
    split = split_rows(100, SplitConfig(0.7, 0.15, 0.15))
    assert (split.train, split.val, split.test) == ((0, 70), (70, 85), (85, 100))


def test_prepare_makes_windows_for_each_part(sensor_csv):
    from forecaster.config import DataConfig
    from forecaster.data.load import load_csv

    data = load_csv(sensor_csv(rows=500), DataConfig(targets=("temp",)))
    prepared = prepare(data, SplitConfig(), WindowConfig(24, 6))
    assert prepared.windows["train"].x.shape == (350 - 30 + 1, 24, 3)
    assert prepared.windows["val"].y.shape == (75 - 30 + 1, 6, 1)
    assert prepared.windows["train"].x.dtype == np.float32
    assert isinstance(prepared.scaler, MinMaxParams)


def test_prepare_says_how_many_rows_are_needed(sensor_csv):
    from forecaster.config import DataConfig
    from forecaster.data.load import load_csv

    path = sensor_csv(rows=200)
    data = load_csv(path, DataConfig(targets=("temp",)))
    with pytest.raises(DataError) as err:
        prepare(data, SplitConfig(), WindowConfig(40, 10))
    assert str(err.value) == (
        f"{path} has too few rows for window 40 and horizon 10, which need 50 consecutive "
        "complete rows per origin: the training part (rows 0-139) leaves 91, the validation "
        "part (rows 140-169) leaves 0 and the test part (rows 170-199) leaves 0 origins; use a "
        "smaller --window or --horizon, or a file with at least 334 rows (it has 200)"
    )


def test_prepare_names_a_gap_that_leaves_a_part_without_origins(write_text):
    from forecaster.config import DataConfig
    from forecaster.data.load import load_csv

    # 40 hourly rows; rows 35-36 are missing, so the test part (34-39) breaks into 1 + 3 rows.
    stamps = [f"2024-01-{1 + i // 24:02d} {i % 24:02d}:00,{(i * 7) % 11}" for i in range(40)]
    lines = ["time,x", *(s for i, s in enumerate(stamps) if i not in (35, 36))]
    path = write_text("\n".join(lines) + "\n")
    data = load_csv(path, DataConfig(targets=("x",), max_gap=0))
    with pytest.raises(DataError) as err:
        prepare(data, SplitConfig(), WindowConfig(3, 1))
    message = str(err.value)
    assert "the test part (rows 34-39) leaves 0 (its longest stretch without a gap is 3 rows)" in (
        message
    )
    assert message.endswith("(it has 40) and fewer gaps (a larger --max-gap fills short ones)")


def test_rows_needed_covers_the_rounding_of_the_split():
    for span in range(1, 80):
        for config in (SplitConfig(), SplitConfig(0.6, 0.2, 0.2), SplitConfig(0.8, 0.1, 0.1)):
            n_rows = rows_needed(config, span)
            split = split_rows(n_rows, config)
            sizes = [split.part(p)[1] - split.part(p)[0] for p in ("train", "val", "test")]
            assert min(sizes) >= span
            assert n_rows <= span / min(config.test, config.val) + 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.7,0.2,0.2", "split fractions must add up to 1, got 0.7,0.2,0.2 \\(sum 1.1\\)"),
        ("0.7,0.3", "--split takes three fractions"),
        ("1,0,0", "split fractions must each be between 0 and 1"),
    ],
)
def test_split_config_validation(text, message):
    with pytest.raises(ConfigError, match=message):
        SplitConfig.parse(text)


@pytest.mark.parametrize(("window", "horizon"), [(0, 1), (4, 0), (-3, 2)])
def test_window_config_validation(window, horizon):
    with pytest.raises(ConfigError, match="must be at least 1 step"):
        WindowConfig(window, horizon)
