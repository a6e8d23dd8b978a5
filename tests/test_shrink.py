"""Per-step shrinkage of the correction toward the reference, fitted on held-out windows."""

from __future__ import annotations

import numpy as np
import pytest

from forecaster.config import ModelConfig
from forecaster.model.shrink import best_weights, shrink_toward_reference
from tests.test_lags import tiny_lag_model


def test_each_step_keeps_the_share_of_the_correction_that_minimises_the_mae():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(200, 4, 1))
    correction = rng.normal(size=(200, 4, 1))
    keep = np.array([0.3, 1.0, 0.0, 0.7])[None, :, None]
    truth = reference + keep * correction
    truth[:, 3] += rng.normal(0, 0.05, size=(200, 1))  # noise leaves the best share near 0.7
    weights = best_weights(truth, reference, reference + correction)
    assert weights.shape == (4, 1)
    np.testing.assert_allclose(weights[:3, 0], [0.3, 1.0, 0.0], atol=1e-9)
    assert weights[3, 0] == pytest.approx(0.7, abs=0.03)
    # The exact minimiser: no share on a fine grid does better.
    for h in range(4):

        def mae(w: float, h: int = h) -> float:
            return float(np.abs(truth[:, h] - reference[:, h] - w * correction[:, h]).mean())

        assert mae(weights[h, 0]) <= min(mae(w) for w in np.linspace(0, 1, 201)) + 1e-12


def test_the_share_stays_between_none_and_all_of_the_correction():
    reference = np.zeros((50, 3, 2))
    correction = np.linspace(-1, 1, 50)[:, None, None] * np.ones((1, 3, 2))
    truth = np.stack([2 * correction[:, 0], -correction[:, 1], 0 * correction[:, 2]], 1)
    weights = best_weights(truth, reference, correction)
    np.testing.assert_array_equal(weights, [[1, 1], [0, 0], [0, 0]])  # 2 and -1 clipped
    # A model that never departs from its reference keeps its correction (there is none).
    np.testing.assert_array_equal(best_weights(truth, reference, reference), np.ones((3, 2)))


def test_the_shrinkage_is_folded_into_the_head_and_leaves_the_lag_path_whole():
    """The shrunk model forecasts base + w * (model - base), base the reference and the lags'
    linear path, with no extra op."""
    import keras

    keras.utils.set_random_seed(1)
    model = tiny_lag_model()
    highway = model.get_layer("forecast").highway
    highway.assign(np.full((3, 3), 0.5, np.float32))
    head = model.get_layer("head")
    kernel, bias = head.get_weights()
    x = np.random.default_rng(1).random((64, 6, 3)).astype(np.float32)
    full = model.predict(x, verbose=0)
    head.set_weights([kernel * 0, bias * 0])
    base = model.predict(x, verbose=0)  # the reference and the lag path
    head.set_weights([kernel, bias])
    y = base + np.array([0.4, 0.0, 1.0])[:, None] * (full - base)
    weights = shrink_toward_reference(model, x, y)
    assert weights is not None
    np.testing.assert_allclose(weights[:, 0], [0.4, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0), y, atol=1e-5)
    np.testing.assert_allclose(head.get_weights()[0], kernel * weights.reshape(-1), atol=1e-7)
    np.testing.assert_array_equal(np.asarray(highway), np.full((3, 3), 0.5, np.float32))


def test_a_model_without_a_reference_is_left_alone():
    from forecaster.model.build import build_model

    model = build_model(
        ModelConfig(units=2, residual="none", normalize="none"),
        window=4,
        n_features=1,
        horizon=2,
        n_targets=1,
    )
    x = np.ones((8, 4, 1), np.float32)
    before = model.predict(x, verbose=0)
    assert shrink_toward_reference(model, x, np.zeros((8, 2, 1), np.float32)) is None
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)
