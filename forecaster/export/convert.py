"""Converting a trained GRU/LSTM forecaster to LiteRT: the loop twin, quantization, shrinking.

Measured with tensorflow-cpu 2.21, keras 3.15 and ai-edge-litert 2.3 (see README, "Export"):

* Keras' own recurrent layers convert to a WHILE loop over TensorLists, which needs a fixed
  batch to stay builtin-only, and the int8 calibrator segfaults on it. Unrolling repeats every
  weight per time step (int8 files larger than float32).
* So the converter is given a twin with the same weights that runs the whole recurrent stack in
  one `tf.while_loop` without TensorLists: the first layer's input projection is one matmul over
  all steps before the loop, each recurrent weight is a single constant inside the loop body, and
  the batch dimension stays free (resizable at run time). Every mode converts builtin-only.
* Full int8 avoids the calibrator: activation ranges are recorded in an eager pass over the
  representative windows and baked in as FakeQuant ops, so the converter quantizes the graph
  like a quantization-aware-trained one. Sigmoid and tanh outputs use LiteRT's fixed ranges.
* Full integer with int16 activations (`int16x8`, and `micro` at batch 1 for TensorFlow Lite
  Micro) unrolls the twin instead, so every step has its own ranges and no tensor is dynamic, and
  quantizes the float file with ai-edge-quantizer (per-tensor int8 weights). Its calibrator does
  not follow WHILE bodies, and the converter's own calibrator crashes on the loop twin (peeled
  step 0 or not), which is why the loop's int8 keeps its FakeQuant ranges.
* `shrink` rewrites the flatbuffer: byte-identical constants share one buffer, and names,
  internal shape signatures and conversion metadata go.

The converter can crash its process, so `forecaster.export.ship` runs this module in a child:
`python -m forecaster.export.convert MODEL.keras OUT_DIR MODE[,MODE...] [REPRESENTATIVE.npy]`.
"""

from __future__ import annotations

import hashlib
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

MODES = ("float32", "dynamic", "float16", "int8", "int16x8", "micro")
# Full-integer modes quantized by ai-edge-quantizer from an unrolled float file: int8 weights per
# tensor, int16 activations. `micro` fixes the batch at 1 for TensorFlow Lite Micro.
INTEGER_MODES = ("int16x8", "micro")
# The recipe behind each mode's file, named in the bundle and the report.
RECIPES = {
    "float32": "WHILE-loop twin, float32",
    "dynamic": "WHILE-loop twin, TFLite converter dynamic range (int8 weights, float activations)",
    "float16": "WHILE-loop twin, TFLite converter float16 weights",
    "int8": "WHILE-loop twin, FakeQuant ranges baked in, TFLite converter full int8 (per-tensor)",
    "int16x8": "unrolled twin, ai-edge-quantizer static_wi8_ai16 with per-tensor int8 weights, "
    "int16 activations, global min/max calibration",
    "micro": "unrolled twin at batch 1, ai-edge-quantizer static_wi8_ai16 with per-tensor int8 "
    "weights, global min/max calibration; TFLite Micro ops only",
}
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
_RANGE_MARGIN = 0.5


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


def build_twin(
    model: keras.Model,
    *,
    batch: int | None = None,
    calibration: np.ndarray | None = None,
    unroll: bool = False,
) -> keras.Model:
    """A single-loop twin of `model` with the same weights.

    With `calibration` windows (n, window, features), activation ranges are measured on them and
    every activation and weight is wrapped in FakeQuant, ready for full-int8 conversion. With
    `unroll`, the steps are written out one after another instead of a WHILE loop: every step's
    activations get their own tensors (so their own quantization ranges) and no tensor is dynamic.
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
            if kind == "lstm":
                weights = [[lstm_gates_ifoc(a) for a in ws] for ws in weights]
            self.source = weights
            self.head_source = [np.asarray(w) for w in head.weights]
            self.mode = "float"  # float | record | fake_quant
            self.ranges: dict[str, list[float]] = {}
            self.arrays: dict[int, np.ndarray] = {}

        def build(self, input_shape: Any) -> None:
            def constant(name: str, value: np.ndarray) -> Any:
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
                    margin = _RANGE_MARGIN * (hi - lo)
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
            xp = self.project(0, ops.reshape(x, (-1, n_features)), "l0_xp")  # all steps at once
            xp = ops.reshape(xp, (-1, steps, xp.shape[-1]))
            if self.mode == "record" or unroll:
                for t in range(steps):
                    values = self.step(xp[:, t], values)
            else:

                def body(t: Any, *state: Any) -> tuple[Any, ...]:
                    return (t + 1, *self.step(tf.gather(xp, t, axis=1), state))

                shapes = (
                    tf.TensorShape([]),
                    *(tf.TensorShape([None, s.shape[-1]]) for s in values if s is not None),
                )
                values = tuple(
                    tf.while_loop(
                        lambda t, *state: t < steps,
                        body,
                        (tf.constant(0), *values),
                        shape_invariants=shapes,
                    )[1:]
                )
            values = self.states(values)
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


def convert(model: keras.Model, mode: str, representative: np.ndarray | None = None) -> bytes:
    """LiteRT flatbuffer bytes of `model` in one quantization mode, builtin ops only."""
    import tensorflow as tf

    if mode not in MODES:
        raise ValueError(f"unknown quantization mode {mode!r}")
    if mode in ("int8", *INTEGER_MODES) and representative is None:
        raise ValueError(f"{mode} needs representative windows")
    if mode in INTEGER_MODES:
        assert representative is not None
        return quantize_integer(model, representative, batch=1 if mode == "micro" else None)
    twin = build_twin(model, calibration=representative if mode == "int8" else None)
    fn = tf.function(
        lambda x: twin(x, training=False),
        input_signature=[tf.TensorSpec(list(twin.input_shape), tf.float32, name="window")],
    )
    # The Keras model must not be passed as the second argument: the weights would stay
    # resource variables and the file would fail at READ_VARIABLE.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # never Flex ops
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return shrink(converter.convert())


def _float_file(twin: keras.Model, batch: int | None = None) -> bytes:
    import tensorflow as tf

    shape = [batch, *twin.input_shape[1:]]
    fn = tf.function(
        lambda x: twin(x, training=False),
        input_signature=[tf.TensorSpec(shape, tf.float32, name="window")],
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return with_signature(converter.convert())


def quantize_integer(model: keras.Model, representative: np.ndarray, *, batch: int | None) -> bytes:
    """A full-integer file: the unrolled float twin quantized by ai-edge-quantizer.

    Unrolled, every step's activations get their own range (step 0's zero state no longer
    collapses a range shared with the others); ai-edge-quantizer's calibrator cannot follow a
    WHILE body. Ranges are global min/max over the windows (its default moving average shrinks
    them when calls are small), and weights shared by every step stay one buffer after `shrink`.
    """
    from ai_edge_quantizer import calibrator, quantizer, recipe, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    twin = build_twin(model, unroll=True)
    # Calibrated in batches of 50 windows on a resizable file; the batch-1 file traced from the
    # same twin has the same tensor names, so it takes the same ranges.
    resizable = _float_file(twin)
    float_file = resizable if batch is None else _float_file(twin, batch)
    chosen = recipe.static_wi8_ai16()
    for rule in chosen:
        # Per-tensor weight scales, not the recipe's per-channel ones: a channel whose few
        # weights are tiny (one input feature, an input weight of 7e-5) gets a tiny scale and a
        # bias its integer kernel cannot hold (CO2 series: worst origin 1.32 ppm off, 0.125
        # per-tensor; the bench's LSTM(64): +1.20% MAE per channel, -0.06% per tensor).
        rule["op_config"]["weight_tensor_config"]["granularity"] = "TENSORWISE"
    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(chosen)
    calibration = calibrator.Calibrator(
        resizable, num_threads=1, qsv_update_func=qsv_utils.min_max_update
    )
    size = 50
    windows = np.asarray(representative, np.float32)
    calibration.calibrate(
        {
            "serving_default": [
                {"window": windows[start : start + size]}
                for start in range(0, max(len(windows) - size, 0) + 1, size)
            ]
        },
        manager,
    )
    ranges = calibration.get_model_qsvs()
    for qsv in ranges.values():
        # As for int8's open ranges: test data leaves the training range (trends, seasons the
        # training part lacked), and int16 has the resolution to leave room on every tensor.
        if "min" in qsv and "max" in qsv:
            margin = _RANGE_MARGIN * (qsv["max"] - qsv["min"])
            qsv["min"], qsv["max"] = qsv["min"] - margin, qsv["max"] + margin
    done = quantizer.Quantizer(bytearray(float_file), chosen).quantize(
        ranges, enable_progress_report=False, enable_progress_bar=False
    )
    return shrink(bytes(done.quantized_model))


def with_signature(model_bytes: bytes) -> bytes:
    """The flatbuffer with one signature, `serving_default`: window -> forecast.

    Converting a concrete function writes none, and ai-edge-quantizer calibrates by signature.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    graph = model.subgraphs[0]

    def tensor_map(name: str, index: int) -> Any:
        item = schema.TensorMapT()
        item.name, item.tensorIndex = name, index
        return item

    signature = schema.SignatureDefT()
    signature.signatureKey = "serving_default"
    signature.inputs = [tensor_map("window", graph.inputs[0])]
    signature.outputs = [tensor_map("forecast", graph.outputs[0])]
    model.signatureDefs = [signature]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def shrink(model_bytes: bytes) -> bytes:
    """Rewrite a flatbuffer smaller: shared identical constants, no names or unused tensors.

    Also drops the optional per-tensor quantization min/max arrays and empty quantization
    tables (the interpreter reads only scale and zero point), subgraph names, the model
    description and the converter's metadata.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    data = [bytes(b.data.tobytes()) if b.data is not None else b"" for b in model.buffers]
    for index, graph in enumerate(model.subgraphs):
        _share_constants(graph, data)
        keep = _used_tensors(graph)
        new = {old: n for n, old in enumerate(keep)}
        io = set(graph.inputs) | set(graph.outputs) if index == 0 else set()
        graph.name = None
        for old in keep:
            tensor = graph.tensors[old]
            if tensor.quantization is not None:
                tensor.quantization.min = None
                tensor.quantization.max = None
                if tensor.quantization.scale is None and tensor.quantization.zeroPoint is None:
                    tensor.quantization = None  # an empty table still costs bytes
            if old not in io:
                tensor.name = None
                tensor.shapeSignature = None
        graph.tensors = [graph.tensors[i] for i in keep]
        for op in graph.operators:
            op.inputs = [new[i] if i >= 0 else i for i in op.inputs]
            op.outputs = [new[i] if i >= 0 else i for i in op.outputs]
            if op.intermediates is not None:
                op.intermediates = [new[int(i)] for i in op.intermediates]
        graph.inputs = [new[i] for i in graph.inputs]
        graph.outputs = [new[i] for i in graph.outputs]
        for signature in model.signatureDefs or []:
            if signature.subgraphIndex == index:
                for item in [*(signature.inputs or []), *(signature.outputs or [])]:
                    item.tensorIndex = new[item.tensorIndex]
    model.description = None
    model.metadata = [m for m in (model.metadata or []) if m.name != b"CONVERSION_METADATA"]
    _share_buffers(model, data)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _share_constants(graph: Any, data: list[bytes]) -> None:
    """Point operators at one tensor per distinct constant (same bytes, type, shape, quant)."""

    def quant_key(q: Any) -> Any:
        if q is None:
            return None
        return tuple(None if a is None else np.asarray(a).tobytes() for a in (q.scale, q.zeroPoint))

    first: dict[Any, int] = {}
    remap = list(range(len(graph.tensors)))
    for i, tensor in enumerate(graph.tensors):
        content = data[tensor.buffer]
        if content and not tensor.isVariable:
            shape = None if tensor.shape is None else tuple(tensor.shape)
            key = (
                hashlib.sha1(content).digest(),
                tensor.type,
                shape,
                quant_key(tensor.quantization),
            )
            remap[i] = first.setdefault(key, i)
    for op in graph.operators:
        op.inputs = [remap[i] if i >= 0 else i for i in op.inputs]


def _used_tensors(graph: Any) -> list[int]:
    used = set(graph.inputs) | set(graph.outputs)
    for op in graph.operators:
        used |= {i for i in op.inputs if i >= 0} | {i for i in op.outputs if i >= 0}
        if op.intermediates is not None:
            used |= {int(i) for i in op.intermediates}
    return sorted(used)


def _share_buffers(model: Any, data: list[bytes]) -> None:
    """Keep one buffer per distinct content; buffer 0 stays the empty sentinel."""
    referenced = {t.buffer for g in model.subgraphs for t in g.tensors}
    referenced |= {m.buffer for m in model.metadata}
    order = [0, *sorted(referenced - {0})]
    seen: dict[Any, int] = {}
    buffers: list[Any] = []
    mapping: dict[int, int] = {}
    for i in order:
        key: Any = hashlib.sha1(data[i]).digest() if i and data[i] else ("unique", i)
        if key not in seen:
            seen[key] = len(buffers)
            buffers.append(model.buffers[i])
        mapping[i] = seen[key]
    model.buffers = buffers
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            tensor.buffer = mapping[tensor.buffer]
    for meta in model.metadata:
        meta.buffer = mapping[meta.buffer]


def main(argv: list[str]) -> int:
    """Child-process entry: convert one saved model to every requested mode.

    Writes OUT_DIR/<mode>.tflite, or OUT_DIR/<mode>.error with the reason; a crash of the
    converter kills only this process.
    """
    from forecaster.quiet import quiet_tensorflow

    quiet_tensorflow()  # before TensorFlow loads; FORECASTER_VERBOSE=1 from --verbose shows it
    import keras

    from forecaster.model.build import custom_layers

    custom_layers()  # registers forecaster's layers for safe-mode loading
    model_path, out_dir, modes = Path(argv[0]), Path(argv[1]), argv[2].split(",")
    representative = np.load(argv[3]) if len(argv) > 3 else None
    model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    for mode in modes:
        try:
            (out_dir / f"{mode}.tflite").write_bytes(convert(model, mode, representative))
        except Exception as exc:
            (out_dir / f"{mode}.error").write_text(
                f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
