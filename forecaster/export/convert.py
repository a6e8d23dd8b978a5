"""Converting a trained GRU/LSTM forecaster to LiteRT in each quantization mode.

The twin the converter is given lives in `twin`, the flatbuffer rewriting in `flatbuffer`.

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
* For an LSTM, the full-integer modes first try a fused twin instead (`fused_integer`): each
  layer is one UNIDIRECTIONAL_SEQUENCE_LSTM op at batch 1, quantized by the converter to int8
  with an int16 cell state (the only integer LSTM kernel LiteRT and TFLite Micro share), the
  rest of the graph to int16 by ai-edge-quantizer as in the unrolled recipe. The weights are
  stored once, so the file is about a third of the float32 loop file; the export gate decides,
  and the unrolled recipe is tried when the fused file fails it.
* `shrink` rewrites the flatbuffer: byte-identical constants share one buffer, and names,
  internal shape signatures and conversion metadata go.

The converter can crash its process, so `forecaster.export.ship` runs this module in a child:
`python -m forecaster.export.convert MODEL.keras OUT_DIR MODE[,MODE...] [REPRESENTATIVE.npy]`.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forecaster.export.flatbuffer import (
    builtin_code,
    requantize_pairs,
    shrink,
    widen_lstm_cells,
    with_signature,
    zero_lstm_states,
)
from forecaster.export.twin import RANGE_MARGIN, build_twin

if TYPE_CHECKING:
    import keras

MODES = ("float32", "dynamic", "float16", "int8", "int16x8", "micro")
# Full-integer modes quantized by ai-edge-quantizer from an unrolled float file: int8 weights per
# tensor, int16 activations. `micro` fixes the batch at 1 for TensorFlow Lite Micro.
INTEGER_MODES = ("int16x8", "micro")
# A conversion is a mode, or a mode and a recipe other than the mode's own: "int16x8@fused".
FUSED = "fused"
# The recipe behind each conversion's file, named in the bundle and the report.
RECIPES = {
    "float32": "WHILE-loop twin, float32",
    "dynamic": "WHILE-loop twin, TFLite converter dynamic range (int8 weights, float activations)",
    "float16": "WHILE-loop twin, TFLite converter float16 weights",
    "int8": "WHILE-loop twin, FakeQuant ranges baked in, TFLite converter full int8 (per-tensor)",
    "int16x8": "unrolled twin, ai-edge-quantizer static_wi8_ai16 with per-tensor int8 weights, "
    "int16 activations, global min/max calibration",
    "micro": "unrolled twin at batch 1, ai-edge-quantizer static_wi8_ai16 with per-tensor int8 "
    "weights, global min/max calibration; TFLite Micro ops only",
    f"int16x8@{FUSED}": "fused-LSTM twin at batch 1: UNIDIRECTIONAL_SEQUENCE_LSTM by the TFLite "
    "converter in int8 with an int16 cell state, the rest by ai-edge-quantizer static_wi8_ai16 "
    "with per-tensor int8 weights",
    f"micro@{FUSED}": "fused-LSTM twin at batch 1: UNIDIRECTIONAL_SEQUENCE_LSTM by the TFLite "
    "converter in int8 with an int16 cell state, the rest by ai-edge-quantizer static_wi8_ai16 "
    "with per-tensor int8 weights; TFLite Micro ops only",
}


def conversions(mode: str, cell: str) -> list[str]:
    """The conversions to try for a mode, in order: the gate ships the first that passes.

    For an LSTM's full-integer modes the fused file comes first: it is the smaller one.
    """
    if cell == "lstm" and mode in INTEGER_MODES:
        return [f"{mode}@{FUSED}", mode]
    return [mode]


def convert(model: keras.Model, mode: str, representative: np.ndarray | None = None) -> bytes:
    """LiteRT flatbuffer bytes of `model` in one quantization mode, builtin ops only."""
    import tensorflow as tf

    mode, _, recipe_name = mode.partition("@")
    if mode not in MODES or recipe_name not in ("", FUSED):
        raise ValueError(f"unknown quantization mode {mode!r}")
    if mode in ("int8", *INTEGER_MODES) and representative is None:
        raise ValueError(f"{mode} needs representative windows")
    if mode in INTEGER_MODES and recipe_name == FUSED:
        assert representative is not None
        return fused_integer(model, representative)
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
    twin = build_twin(model, unroll=True)
    # Calibrated in batches of 50 windows on a resizable file; the batch-1 file traced from the
    # same twin has the same tensor names, so it takes the same ranges.
    resizable = _float_file(twin)
    float_file = resizable if batch is None else _float_file(twin, batch)
    return shrink(_int16_activations(float_file, resizable, representative, 50))


def _int16_activations(
    float_file: bytes, calibration_file: bytes, representative: np.ndarray, size: int
) -> bytes:
    """`float_file`'s float ops in int16 with int8 weights per tensor (ai-edge-quantizer),
    ranged on `calibration_file` run over the windows `size` at a time."""
    from ai_edge_quantizer import calibrator, quantizer, recipe, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

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
        calibration_file, num_threads=1, qsv_update_func=qsv_utils.min_max_update
    )
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
            margin = RANGE_MARGIN * (qsv["max"] - qsv["min"])
            qsv["min"], qsv["max"] = qsv["min"] - margin, qsv["max"] + margin
    done = quantizer.Quantizer(bytearray(float_file), chosen).quantize(
        ranges, enable_progress_report=False, enable_progress_bar=False
    )
    return bytes(done.quantized_model)


def fused_integer(model: keras.Model, representative: np.ndarray) -> bytes:
    """A full-integer file with each LSTM layer one fused op, at batch 1.

    The converter quantizes the fused op alone (int8 input, output and weights, int16 cell
    state: ai-edge-quantizer has no LSTM op, and the converter's int16 activations refuse it),
    leaving the other ops float; ai-edge-quantizer then takes those to int16 as in the unrolled
    recipe. On an LSTM(64) over the bench's 48x3 windows the converter's int8 for the whole
    graph cost +3.5% MAE and moved one origin 4.6 times the bound; the LSTM alone in int8, +1.2%
    and 0.64 of it; this recipe, +0.4% and 0.81 of it.
    """
    import tensorflow as tf
    from tensorflow.lite.python import convert as lite_convert
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    twin = build_twin(model, batch=1, fused=True)
    fn = tf.function(
        lambda x: twin(x, training=False),
        input_signature=[tf.TensorSpec(list(twin.input_shape), tf.float32, name="window")],
    )
    # The converter fuses composite functions only on its saved-model path, which it takes
    # when given something trackable holding the function.
    holder = tf.Module()
    holder.forward = fn

    def converter() -> Any:
        made = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], holder)
        made.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return made

    windows = np.asarray(representative, np.float32)
    float_file = converter().convert()
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(float_file))
    used = {names[builtin_code(c)] for c in graph.operatorCodes}
    if "UNIDIRECTIONAL_SEQUENCE_LSTM" not in used:
        raise ValueError("the converter did not fuse the LSTM layers")
    calibrating = converter()
    calibrating.optimizations = [tf.lite.Optimize.DEFAULT]
    calibrating.representative_dataset = lambda: ([w[None]] for w in windows)
    calibrating._experimental_calibrate_only = True  # ranges only: the LSTM is quantized alone
    calibrated = widen_lstm_cells(calibrating.convert())
    lstm_int8 = with_signature(
        lite_convert.mlir_quantize(
            calibrated, denylisted_ops=sorted(used - {"UNIDIRECTIONAL_SEQUENCE_LSTM"})
        )
    )
    mixed = _int16_activations(lstm_int8, lstm_int8, windows, 1)
    return shrink(zero_lstm_states(requantize_pairs(mixed)))


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
