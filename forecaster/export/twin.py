"""The converter's twin of a trained forecaster: the same weights, a graph LiteRT converts well.

Keras' recurrent layers convert to a WHILE loop over TensorLists, which needs a fixed batch to
stay builtin-only, and the int8 calibrator segfaults on it. The twin runs the whole recurrent
stack in one `tf.while_loop` without TensorLists (the first layer's input projection is one
matmul over all steps before the loop, each recurrent weight a single constant in the body, the
batch free), or unrolled over the window for the full-integer modes. For full int8 it records
activation ranges in an eager pass and bakes them in as FakeQuant ops (see `convert`). An LSTM
stack can instead be one composite function per layer that the converter fuses into LiteRT's
UNIDIRECTIONAL_SEQUENCE_LSTM op, at a fixed batch of 1 (`fused`).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

# LiteRT's int8 LOGISTIC and TANH kernels have fixed output ranges; matching them adds no ops.
_SIGMOID_RANGE = (0.0, 255.0 / 256.0)
_TANH_RANGE = (-1.0, 127.0 / 128.0)
# Inputs and forecasts in original levels leave the training range on real sensor data (trends,
# level shifts), and so does the network's forecast change `y` in a season the training part did
# not have (spring after a winter's training: 43% beyond the calibrated span on the weather sample,
# clipped to a 5.7 degC error at one origin; 2.05 with the margin). Their int8 ranges get this share
# of the calibrated span on each side, trading one bit of resolution for not clipping.
_OPEN_RANGES = (
    "x",
    "ref",
    "ref_change",
    "ref_gained",
    "ref_z",
    "ref_level",
    "lag_in",
    "lag_out",
    "y",
    "y_lag",
    "out",
)
RANGE_MARGIN = 0.5


def _structure(model: keras.Model) -> tuple[str, list[Any], Any, dict[str, Any], dict[str, Any]]:
    """Cell kind, recurrent layers, dense head, and the normalize / reference layer configs."""
    import keras

    from forecaster.model.build import custom_layers

    layers = custom_layers()

    def config_of(kind: type) -> dict[str, Any]:
        found: list[Any] = [lay for lay in model.layers if isinstance(lay, kind)]
        if not found:
            return {}
        config = dict(found[0].get_config())
        if getattr(found[0], "gain", None) is not None:  # last_seasonal's learned weights
            config["gain"] = np.asarray(found[0].gain_value(), np.float32)
        if getattr(found[0], "highway", None) is not None:  # the seasonal lags' linear path
            config["highway"] = np.asarray(found[0].highway, np.float32)
        return config

    normalize = config_of(layers["WindowNormalize"])
    reference = config_of(layers["AddReference"])

    recurrent = [
        layer for layer in model.layers if isinstance(layer, keras.layers.GRU | keras.layers.LSTM)
    ]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if any(isinstance(layer, keras.layers.Bidirectional) for layer in model.layers):
        raise ValueError("bidirectional models cannot be exported yet; train without it")
    if not recurrent or len(dense) != 1 or dense[0].get_config()["activation"] != "linear":
        raise ValueError("expected a recurrent stack, a linear Dense head and a Reshape")
    kind = "gru" if isinstance(recurrent[0], keras.layers.GRU) else "lstm"
    for layer in recurrent:
        cell = layer.cell
        if (
            layer.go_backwards
            or layer.stateful
            or cell.activation is not keras.activations.tanh
            or cell.recurrent_activation is not keras.activations.sigmoid
            or not cell.use_bias
            or (kind == "gru" and not cell.reset_after)
        ):
            raise ValueError(f"layer {layer.name} has a configuration the export does not know")
    return kind, recurrent, dense[0], normalize, reference


def _fused_lstm(steps: int) -> Any:
    """One LSTM layer as the composite function LiteRT's converter fuses into its
    UNIDIRECTIONAL_SEQUENCE_LSTM op.

    The converter recognises Keras 2's `standard_lstm` by its attributes (an `api_implements` of
    "lstm_" and a unique id, `time_major`, `go_backwards`) and its signature: inputs, initial h
    and c (a fixed batch), kernel, recurrent kernel, bias (gates i, f, c, o, Keras 3's order
    too); outputs last h, the sequence, h, c and a runtime tag, the last two unused. It replaces
    the body, so the body only has to be right for TensorFlow.
    """
    import tensorflow as tf

    attributes = {
        "api_implements": f"lstm_{uuid.uuid4()}",
        "time_major": False,
        "go_backwards": False,
    }

    @tf.function(autograph=False, experimental_attributes=attributes)
    def lstm(inputs: Any, init_h: Any, init_c: Any, kernel: Any, recurrent: Any, bias: Any) -> Any:
        h, c, outputs = init_h, init_c, []
        for t in range(steps):
            z = tf.matmul(inputs[:, t], kernel) + tf.matmul(h, recurrent) + bias
            i, f, g, o = tf.split(z, 4, axis=1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            outputs.append(h)
        return h, tf.stack(outputs, axis=1), h, c, tf.constant(0.0)

    return lstm


def build_twin(
    model: keras.Model,
    *,
    batch: int | None = None,
    calibration: np.ndarray | None = None,
    unroll: bool = False,
    fused: bool = False,
) -> keras.Model:
    """A single-loop twin of `model` with the same weights.

    With `calibration` windows (n, window, features), activation ranges are measured on them and
    every activation and weight is wrapped in FakeQuant, ready for full-int8 conversion. With
    `unroll`, the steps are written out one after another instead of a WHILE loop: every step's
    activations get their own tensors (so their own quantization ranges) and no tensor is dynamic.
    With `fused` (an LSTM, batch 1), each layer is a composite function the converter turns into
    one UNIDIRECTIONAL_SEQUENCE_LSTM op; its weights are constants, not variables, because the
    converter sees composite functions only through a saved model, which keeps variables as
    resources.
    """
    import keras
    import tensorflow as tf
    from keras import ops

    from forecaster.model.build import (
        lag_correction,
        normalize_window,
        smoothing_matrix,
        window_reference,
    )

    kind, recurrent, head, normalize, reference = _structure(model)
    if fused and (kind != "lstm" or batch != 1):
        raise ValueError("only an LSTM at a fixed batch of 1 converts to the fused LSTM op")
    out_shape = tuple(model.output_shape[1:])
    steps, n_features = model.input_shape[1], model.input_shape[2]
    per_layer = 1 if kind == "gru" else 2  # states per layer: h, or h and c

    def lstm_gates_ifoc(a: np.ndarray) -> np.ndarray:
        # Keras orders LSTM gates i, f, c, o; i, f, o first lets one sigmoid cover three gates.
        u = a.shape[-1] // 4
        return np.concatenate([a[..., : 2 * u], a[..., 3 * u :], a[..., 2 * u : 3 * u]], -1)

    class LoopRNN(keras.layers.Layer):
        def __init__(self) -> None:
            super().__init__(name="rnn_loop")
            self.units = [layer.units for layer in recurrent]
            weights = [
                [np.asarray(w) for w in (r.cell.kernel, r.cell.recurrent_kernel, r.cell.bias)]
                for r in recurrent
            ]
            if kind == "lstm" and not fused:
                weights = [[lstm_gates_ifoc(a) for a in ws] for ws in weights]
            self.source = weights
            self.fused = [_fused_lstm(steps) for _ in recurrent] if fused else []
            self.head_source = [np.asarray(w) for w in head.weights]
            self.mode = "float"  # float | record | fake_quant
            self.ranges: dict[str, list[float]] = {}
            self.arrays: dict[int, np.ndarray] = {}

        def build(self, input_shape: Any) -> None:
            def constant(name: str, value: np.ndarray) -> Any:
                if fused:
                    return tf.constant(value)
                var = self.add_weight(
                    shape=value.shape, initializer="zeros", trainable=False, name=name
                )
                var.assign(value)
                self.arrays[id(var)] = value
                return var

            self.w = [
                [constant(f"{n}{i}", a) for n, a in zip(("k", "rk", "b"), ws, strict=True)]
                for i, ws in enumerate(self.source)
            ]
            if kind == "gru" and unroll:
                # Unrolled, each step's recurrent FULLY_CONNECTED would get its own quantized
                # bias (int64: 1.5 KB a step at 64 units, more with per-channel scales). The z
                # and r parts of the recurrent bias join the input bias, computed once for every
                # step; the candidate's part, which r gates, is one int16 constant all steps share.
                self.folded = []
                for i, (_, _, b) in enumerate(self.source):
                    u = self.units[i]
                    joined = b[0] + np.concatenate([b[1][: 2 * u], np.zeros(u, b.dtype)])
                    self.folded.append(
                        (constant(f"bx{i}", joined), constant(f"bh{i}", b[1][2 * u :]))
                    )
            self.head_kernel = constant("hk", self.head_source[0])
            self.head_bias = constant("hb", self.head_source[1])
            self.gain = constant("gain", reference["gain"]) if "gain" in reference else None
            self.highway = (
                constant("highway", reference["highway"]) if "highway" in reference else None
            )
            decomposition = reference.get("decomposition")
            self.matrix = (
                constant(
                    "smoothing",
                    smoothing_matrix(decomposition["smoothing"], steps, reference["horizon"]),
                )
                if decomposition
                else None
            )

        def act(self, name: str, x: Any) -> Any:
            """Record or fake-quantize an activation, by name (shared across time steps)."""
            if self.mode == "record":
                lo, hi = float(ops.min(x)), float(ops.max(x))
                seen = self.ranges.setdefault(name, [lo, hi])
                seen[0], seen[1] = min(seen[0], lo), max(seen[1], hi)
                return x
            if self.mode == "fake_quant":
                lo, hi = self.ranges[name]
                if name in _OPEN_RANGES:
                    margin = RANGE_MARGIN * (hi - lo)
                    lo, hi = lo - margin, hi + margin
                lo, hi = min(lo, 0.0), max(hi, 0.0)
                hi = max(hi, lo + 1e-6)
                return tf.quantization.fake_quant_with_min_max_args(x, min=lo, max=hi, num_bits=8)
            return x

        def fixed(self, name: str, x: Any, bounds: tuple[float, float]) -> Any:
            if self.mode == "fake_quant":
                lo, hi = bounds
                return tf.quantization.fake_quant_with_min_max_args(x, min=lo, max=hi, num_bits=8)
            return self.act(name, x)

        def weight(self, w: Any) -> Any:
            # Per-tensor symmetric: per-channel FakeQuant on an (in, out) matrix makes the
            # converter fail ("tfl.transpose op has mismatched quantized axes").
            if self.mode != "fake_quant":
                return w
            m = float(np.abs(self.arrays[id(w)]).max()) or 1e-8
            return tf.quantization.fake_quant_with_min_max_args(
                w, min=-m, max=m, num_bits=8, narrow_range=True
            )

        def project(self, i: int, x: Any, name: str) -> Any:
            kernel, _, bias = self.w[i]
            if kind == "gru" and unroll:
                return self.act(name, ops.matmul(x, self.weight(kernel)) + self.folded[i][0])
            return self.act(
                name, ops.matmul(x, self.weight(kernel)) + (bias[0] if kind == "gru" else bias)
            )

        def cut(self, x: Any, at: int) -> tuple[Any, Any]:
            """x[..., :at] and x[..., at:]: slices when unrolled, because ai-edge-quantizer
            leaves SPLIT_V in float (a DEQUANTIZE/QUANTIZE pair around it at every step)."""
            if unroll:
                return x[:, :at], x[:, at:]
            first, second = tf.split(x, [at, x.shape[-1] - at], axis=-1)
            return first, second

        def cell(self, i: int, xproj: Any, state: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
            _, rkernel, bias = self.w[i]
            u = self.units[i]

            def q(name: str, v: Any) -> Any:
                return self.act(f"l{i}_{name}", v)

            if kind == "gru" and state[0] is None:  # unrolled step 0: h = 0
                x_zr, x_h = self.cut(xproj, 2 * u)
                z, r = ops.split(ops.sigmoid(x_zr), 2, axis=-1)
                candidate = ops.tanh(x_h + r * self.folded[i][1])
                new = candidate - z * candidate
                return new, (new,)
            if kind == "lstm" and state[0] is None:  # unrolled step 0: h = c = 0
                ifo, g = self.cut(xproj, 3 * u)
                ifo, g = ops.sigmoid(ifo), ops.tanh(g)
                c_new = ifo[:, :u] * g
                return (h_new := ifo[:, 2 * u :] * ops.tanh(c_new)), (h_new, c_new)
            if kind == "gru":
                (h,) = state
                if unroll:
                    hp = ops.matmul(h, self.weight(rkernel))
                else:
                    hp = q("hp", ops.matmul(h, self.weight(rkernel)) + bias[1])
                x_zr, x_h = self.cut(xproj, 2 * u)
                h_zr, h_h = self.cut(hp, 2 * u)
                zr = self.fixed(f"l{i}_zr", ops.sigmoid(q("zrpre", x_zr + h_zr)), _SIGMOID_RANGE)
                z, r = ops.split(zr, 2, axis=-1)
                rhh = r * h_h + r * self.folded[i][1] if unroll else q("rhh", r * h_h)
                candidate = self.fixed(f"l{i}_cand", ops.tanh(q("cpre", x_h + rhh)), _TANH_RANGE)
                new = q("h", candidate + q("zd", z * q("d", h - candidate)))  # z*h + (1-z)*cand
                return new, (new,)
            h, c = state
            gates = q("zz", xproj + q("hp", ops.matmul(h, self.weight(rkernel))))
            ifo, g = self.cut(gates, 3 * u)
            ifo = self.fixed(f"l{i}_ifo", ops.sigmoid(ifo), _SIGMOID_RANGE)
            g = self.fixed(f"l{i}_g", ops.tanh(g), _TANH_RANGE)
            if unroll:
                # Slices, not one SPLIT: at step 0 the state is zero, the converter drops
                # forget * c, and a SPLIT output no op reads is left unallocated, which stops
                # ai-edge-quantizer's calibrator ("Tensor data is null").
                in_gate, forget, out_gate = ifo[:, :u], ifo[:, u : 2 * u], ifo[:, 2 * u :]
            else:
                in_gate, forget, out_gate = ops.split(ifo, 3, axis=-1)
            c_new = q("c", q("fc", forget * c) + q("ig", in_gate * g))
            h_new = q("h", out_gate * self.fixed(f"l{i}_tc", ops.tanh(c_new), _TANH_RANGE))
            return h_new, (h_new, c_new)

        def states(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
            # Loop-carried tensors are float at the WHILE boundary: re-attach their ranges.
            names = ("h", "c")
            return tuple(
                None if s is None else self.act(f"l{j // per_layer}_{names[j % per_layer]}", s)
                for j, s in enumerate(values)
            )

        def step(self, x_t: Any, values: tuple[Any, ...]) -> tuple[Any, ...]:
            values = self.states(values)
            new: list[Any] = []
            inputs = x_t
            for i in range(len(self.w)):
                xproj = inputs if i == 0 else self.project(i, inputs, f"l{i}_xp")
                inputs, s = self.cell(i, xproj, values[i * per_layer : (i + 1) * per_layer])
                new.extend(s)
            return tuple(new)

        def loop(self, x: Any, values: tuple[Any, ...]) -> tuple[Any, ...]:
            """The final states of the stack, run step by step (unrolled) or in a WHILE loop."""
            xp = self.project(0, ops.reshape(x, (-1, n_features)), "l0_xp")  # all steps at once
            xp = ops.reshape(xp, (-1, steps, xp.shape[-1]))
            if self.mode == "record" or unroll:
                for t in range(steps):
                    values = self.step(xp[:, t], values)
                return values

            def body(t: Any, *state: Any) -> tuple[Any, ...]:
                return (t + 1, *self.step(tf.gather(xp, t, axis=1), state))

            shapes = (
                tf.TensorShape([]),
                *(tf.TensorShape([None, s.shape[-1]]) for s in values if s is not None),
            )
            return tuple(
                tf.while_loop(
                    lambda t, *state: t < steps,
                    body,
                    (tf.constant(0), *values),
                    shape_invariants=shapes,
                )[1:]
            )

        def fused_stack(self, x: Any) -> tuple[Any, ...]:
            """The last layer's final h (as the states' second to last), one fused op a layer."""
            last = x
            for i, (kernel, rkernel, bias) in enumerate(self.w):
                zeros = tf.zeros((1, self.units[i]))
                last, x = self.fused[i](x, zeros, zeros, kernel, rkernel, bias)[:2]
            return (last, None)

        def call(self, x: Any) -> Any:
            # A (1, units) zero state broadcasts against the batch at the first step. Unrolled,
            # step 0 is written without its recurrent terms instead (None): an all-zero constant
            # gets a near-zero quantization scale, which breaks the integer ops that read it.
            values = tuple(
                None if unroll else tf.zeros((1, self.units[j // per_layer]))
                for j in range(per_layer * len(self.w))
            )
            # Every use of the input goes through its fake-quant, or int8 conversion leaves a
            # float copy of the input dangling.
            raw = x = self.act("x", x)
            if normalize:
                x = self.act(
                    "x_norm", normalize_window(raw, normalize["mode"], normalize["channels"])
                )
            values = self.fused_stack(x) if fused else self.states(self.loop(x, values))
            h = values[-1] if kind == "gru" else values[-2]
            y = self.act("y", ops.matmul(h, self.weight(self.head_kernel)) + self.head_bias)
            y = ops.reshape(y, (-1, *out_shape))
            if reference:
                ref = window_reference(
                    raw,
                    residual=reference["residual"],
                    normalize=reference["normalize"],
                    target_index=tuple(reference["target_index"]),
                    horizon=reference["horizon"],
                    season=reference["season"],
                    gain=None if self.gain is None else self.weight(self.gain),
                    mark=self.act,
                    decomposition=reference.get("decomposition"),
                    matrix=None if self.matrix is None else self.weight(self.matrix),
                )
                if self.highway is not None:
                    y = self.act(
                        "y_lag",
                        y
                        + lag_correction(
                            raw,
                            ref,
                            lag_channels=reference["lag_channels"],
                            horizon=reference["horizon"],
                            kernel=self.weight(self.highway),
                            mark=self.act,
                        ),
                    )
                if ref is not None or self.highway is not None:
                    y = self.act("out", y if ref is None else y + ref)
            return y

    inputs = keras.Input((steps, n_features), batch_size=batch, name="window")
    layer = LoopRNN()
    twin = keras.Model(inputs, layer(inputs))
    if calibration is not None:
        layer.mode = "record"
        for start in range(0, len(calibration), 128):
            layer(np.asarray(calibration[start : start + 128], np.float32))
        layer.mode = "fake_quant"
    return twin
