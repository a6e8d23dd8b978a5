"""Per-step shrinkage of a trained network's correction toward its reference, fitted on held-out
windows and folded into the dense head's weights.

Training averages the loss over the horizon, so nothing protects a step where the reference
(the last value, last season, or the decomposition's level filter at one step) is already
better than the network's correction: there the correction adds noise. After training, each step
h and target gets the share w in [0, 1] of the network's correction that minimises the
validation MAE of base + w * (model - base), where base is the reference plus the seasonal lags'
linear path (when the model has one). The linear path stays whole: it is fitted on the whole
training part with few weights, and shrinking it too lost accuracy at the horizon on Taylor's
demand (docs/quality.md). The network's correction is the dense head's output, linear in its
weights, so scaling the head's output columns by w bakes the shrinkage into the model: the
exported file and the device compute nothing more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras


def best_weights(truth: np.ndarray, base: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """Per step and target (the last two axes), the w in [0, 1] minimising the mean absolute
    error of base + w * (forecast - base) over the first axis.

    The error is convex in w: sum |d| * |r / d - w| for r = truth - base and d = forecast -
    base, so its minimum is the median of r / d weighted by |d|, clipped to [0, 1]. A step
    where the forecast never departs from the base keeps w = 1.
    """
    r = np.asarray(truth, np.float64) - base
    d = np.broadcast_to(np.asarray(forecast, np.float64) - base, r.shape)
    weights = np.ones(r.shape[1:])
    for index in np.ndindex(*r.shape[1:]):
        rs, ds = r[(slice(None), *index)], d[(slice(None), *index)]
        keep = np.isfinite(rs) & np.isfinite(ds) & (ds != 0)
        if not keep.any():
            continue
        ratio, mass = rs[keep] / ds[keep], np.abs(ds[keep])
        order = np.argsort(ratio)
        cumulative = np.cumsum(mass[order])
        median = ratio[order][np.searchsorted(cumulative, cumulative[-1] / 2)]
        weights[index] = float(np.clip(median, 0.0, 1.0))
    return weights


def shrink_toward_reference(model: keras.Model, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Fit the per-step shrinkage on windows (x, y) and fold it into `model`'s head.

    Returns the shares (horizon, targets), or None when the model adds its output to no
    reference (nothing to shrink toward).
    """
    from forecaster.model.build import custom_layers

    found: list[Any] = [
        layer for layer in model.layers if isinstance(layer, custom_layers()["AddReference"])
    ]
    if not found or (found[0].residual == "none" and found[0].normalize == "none") or not len(x):
        return None
    head = model.get_layer("head")
    kernel, bias = (np.asarray(w) for w in head.get_weights())
    forecast = model.predict(x, batch_size=1024, verbose=0)
    # With a zero head the model outputs its base alone, through the same graph.
    head.set_weights([np.zeros_like(kernel), np.zeros_like(bias)])
    base = model.predict(x, batch_size=1024, verbose=0)
    weights = best_weights(y, base, forecast)
    scale = weights.reshape(-1).astype(np.float32)  # step-major, then target, like the head
    head.set_weights([kernel * scale, bias * scale])
    return weights
