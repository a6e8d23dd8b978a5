"""Arithmetic per window counted from a model's architecture, and the CPU's matmul peak."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

PEAK_SIZE = 2048  # square float32 matmul: large enough for BLAS to reach its peak on every core


def forward_flops(model: keras.Model) -> int:
    """Floating-point operations of one window's forward pass, counting matmuls (2 per MAC).

    Recurrent layers: every step multiplies the input by the kernel and the state by the
    recurrent kernel (3 gates for GRU, 4 for LSTM). Element-wise gate arithmetic is left out:
    for 64 units it adds under 3%.
    """
    import keras

    steps = int(model.input_shape[1])
    total = 0
    for layer in _leaves(model):
        if isinstance(layer, keras.layers.GRU | keras.layers.LSTM):
            cell = layer.cell
            kernel, recurrent = tuple(cell.kernel.shape), tuple(cell.recurrent_kernel.shape)
            total += 2 * steps * (kernel[0] * kernel[1] + recurrent[0] * recurrent[1])
        elif isinstance(layer, keras.layers.Dense):
            shape = tuple(layer.kernel.shape)
            total += 2 * shape[0] * shape[1]
    return total


def _leaves(model: Any) -> list[Any]:
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            found += [layer.forward_layer, layer.backward_layer]
        else:
            found.append(layer)
    return found


def matmul_operands(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two random float32 matrices for the peak measurement."""
    rng = np.random.default_rng(seed)
    shape = (PEAK_SIZE, PEAK_SIZE)
    return rng.random(shape, dtype=np.float32), rng.random(shape, dtype=np.float32)


def matmul_flops() -> int:
    """Operations of one PEAK_SIZE matmul."""
    return 2 * PEAK_SIZE**3
