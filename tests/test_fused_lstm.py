"""The fused-LSTM full-integer file: one LiteRT LSTM op per layer, in LiteRT and TFLite Micro."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forecaster.config import ModelConfig

pytestmark = pytest.mark.slow

WINDOW, FEATURES, HORIZON = 24, 2, 4


def _windows(seed: int, rows: int = 400) -> np.ndarray:
    """Scaled windows of a wandering level under a 12-step cycle, and a noisy second channel."""
    rng = np.random.default_rng(seed)
    steps = np.arange(rows)
    level = np.sin(2 * np.pi * steps / 12) + np.cumsum(rng.normal(0, 0.1, rows))
    other = np.cos(2 * np.pi * steps / 12) + rng.normal(0, 0.3, rows)
    series = np.stack([level, other], axis=1)
    series = (series - series.min(0)) / np.ptp(series, axis=0)
    windows = np.lib.stride_tricks.sliding_window_view(series, WINDOW, axis=0)
    return np.ascontiguousarray(windows.transpose(0, 2, 1), dtype=np.float32)


def _run_one_at_a_time(interpreter: object, windows: np.ndarray) -> np.ndarray:
    (given,), (taken,) = interpreter.get_input_details(), interpreter.get_output_details()  # type: ignore[attr-defined]
    scale, zero = given["quantization"]
    out_scale, out_zero = taken["quantization"]
    forecasts = []
    for window in windows:
        q = np.clip(np.rint(window[None] / scale + zero), -32768, 32767).astype(given["dtype"])
        interpreter.set_tensor(given["index"], q)  # type: ignore[attr-defined]
        interpreter.invoke()  # type: ignore[attr-defined]
        y = interpreter.get_tensor(taken["index"]).astype(np.float32)  # type: ignore[attr-defined]
        forecasts.append((y[0] - out_zero) * out_scale)
    return np.stack(forecasts)


def test_a_stacked_lstm_fuses_to_a_small_integer_file_that_forecasts_like_keras(tmp_path: Path):
    import keras

    from forecaster.device.predictor import interpreter_class
    from forecaster.export.convert import convert
    from forecaster.export.micro import run_micro
    from forecaster.model.build import build_model

    keras.utils.set_random_seed(5)
    x = _windows(5)
    model = build_model(
        ModelConfig("lstm", units=8, layers=2),  # window normalization and the last-value anchor
        window=WINDOW,
        n_features=FEATURES,
        horizon=HORIZON,
        n_targets=1,
    )
    expected = model.predict(x, verbose=0)
    fused = convert(model, "micro@fused", x[::4])
    unrolled = convert(model, "micro", x[::4])
    assert len(fused) < 0.5 * len(unrolled), (len(fused), len(unrolled))

    interpreter = interpreter_class()(model_content=fused)
    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 2
    assert "DEQUANTIZE" not in ops and "WHILE" not in ops
    interpreter.allocate_tensors()
    # Full integer: every tensor holding data is an integer, input and output included.
    assert all(
        np.dtype(t["dtype"]).kind in "iu" or 0 in t["shape"]
        for t in interpreter.get_tensor_details()
    )
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, WINDOW, FEATURES]

    # The op keeps its state in variable tensors; the file zeroes them itself, so a window's
    # forecast does not depend on the window run before it (forward, then backward).
    forward = _run_one_at_a_time(interpreter, x)
    backward = _run_one_at_a_time(interpreter, x[::-1])[::-1]
    np.testing.assert_array_equal(forward, backward)
    # Scaled units (0..1 over the series): within 1% of its range of Keras everywhere.
    assert np.abs(forward - expected).max() < 0.01

    path = tmp_path / "fused.tflite"
    path.write_bytes(fused)
    picks = np.arange(0, len(x), 8)
    micro = run_micro(path, x[picks])
    assert 0 < micro.arena_bytes < 20_000
    assert np.abs(micro.forecast - expected[picks]).max() < 0.01
    np.testing.assert_allclose(micro.forecast, forward[picks], atol=0.005)


def test_only_an_lstm_at_batch_one_converts_fused():
    from forecaster.export.convert import conversions
    from forecaster.export.twin import build_twin
    from forecaster.model.build import build_model

    gru = build_model(ModelConfig("gru", units=4), window=8, n_features=1, horizon=2, n_targets=1)
    with pytest.raises(ValueError, match="only an LSTM at a fixed batch of 1"):
        build_twin(gru, batch=1, fused=True)
    assert conversions("int16x8", "lstm") == ["int16x8@fused", "int16x8"]
    assert conversions("micro", "gru") == ["micro"]
    assert conversions("dynamic", "lstm") == ["dynamic"]
