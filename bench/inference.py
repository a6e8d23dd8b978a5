"""4. Inference: forecaster's LiteRT Predictor vs Keras, and vs the CPU's arithmetic limit.

One trained GRU(64) model (forecaster's recipe), converted in-process with
forecaster.export.convert.convert to every quantization mode. At each batch size every contender
runs side by side in rotating order: Keras `model.predict`, a direct `model(x)` call, a
`tf.function` of the model, the Predictor in each mode (threads chosen by the Predictor), the
float32 Predictor with one thread, and a large float32 numpy matmul whose FLOP/s is the
machine's arithmetic peak in that same round. Inputs are scaled training windows; the Predictor
is timed on `predict_scaled`, the same work as Keras.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench import fixtures
from bench.fixtures import Context
from bench.flops import forward_flops, matmul_flops, matmul_operands
from bench.results import Section, Table, Target
from bench.timing import interleave, median, ratio

MODES = ("float32", "dynamic", "float16", "int8")
PREDICT = "Keras model.predict"
CALL = "Keras model(x)"
FUNCTION = "tf.function(model)"
ONE_THREAD = "LiteRT float32, 1 thread"
BARE = "LiteRT float32, bare interpreter, 1 thread"
MATMULS_ONLY = "LiteRT, the GRU's matmuls only, 1 thread"
THIN = "numpy, the GRU's recurrent matmuls only (all cores)"
MATMUL = "numpy float32 matmul (peak)"
CALIBRATION_WINDOWS = 300


def lite(mode: str) -> str:
    """The contender name of the Predictor in a mode."""
    return f"LiteRT {mode}"


def run(ctx: Context) -> Section:
    """Convert, then time every contender at every batch size."""
    import tensorflow as tf

    from forecaster.bundle import Bundle
    from forecaster.device.predictor import Predictor
    from forecaster.export.convert import convert
    from forecaster.runs.load import load_keras_model

    settings = ctx.settings
    run_dir = fixtures.ensure_run(ctx, "gru")
    model = load_keras_model(run_dir)
    bundle = Bundle.load(run_dir)
    windows = fixtures.prepared(ctx).windows["train"].x
    largest = max(settings.infer_batches)
    x_all = np.ascontiguousarray(np.resize(windows, (largest, *windows.shape[1:])))
    picks = np.linspace(0, len(windows) - 1, CALIBRATION_WINDOWS).astype(int)

    folder = ctx.work / "inference"
    folder.mkdir(exist_ok=True)
    predictors = {}
    for mode in MODES:
        ctx.log(f"converting {mode}")
        path = folder / f"{mode}.tflite"
        path.write_bytes(convert(model, mode, windows[picks]))
        predictors[mode] = Predictor(bundle, path)
    single = Predictor(bundle, folder / "float32.tflite", num_threads=1)
    # Two probes of where the time goes: the interpreter without any Predictor code, and a
    # model with the same loop and matmuls but no gates.
    matmuls_only = folder / "matmuls_only.tflite"
    matmuls_only.write_bytes(_matmuls_only(model))
    ops = _ops_per_invoke(folder / "float32.tflite", model)
    threads = predictors["float32"].num_threads
    flops = forward_flops(model)
    a, b = matmul_operands()
    steps, _, units, _ = _gru_shape(model)
    # The state of every step: batch x units times the units x 3*units recurrent kernel.
    thin = np.ones((1, units), np.float32)
    recurrent = np.random.default_rng(0).random((units, 3 * units), dtype=np.float32)
    function = tf.function(lambda t: model(t, training=False), reduce_retracing=True)

    samples: dict[int, dict[str, list[float]]] = {}
    for batch in settings.infer_batches:
        x = np.ascontiguousarray(x_all[:batch])
        contenders: dict[str, Callable[[], object]] = {
            PREDICT: partial(model.predict, x, batch_size=batch, verbose=0),
            CALL: partial(_eager, model, x),
            FUNCTION: partial(_traced, function, x),
        }
        for mode, predictor in predictors.items():
            contenders[lite(mode)] = partial(predictor.predict_scaled, x)
        contenders[ONE_THREAD] = partial(single.predict_scaled, x)
        contenders[BARE] = _bare(folder / "float32.tflite", x)
        contenders[MATMULS_ONLY] = _bare(matmuls_only, x)
        contenders[THIN] = partial(
            _recurrent_matmuls, x_all[:batch, 0, :1] * thin, recurrent, steps
        )
        contenders[MATMUL] = partial(np.matmul, a, b)
        ctx.log(f"batch {batch}: {len(contenders)} contenders x {settings.infer_repeats} repeats")
        samples[batch] = interleave(
            contenders, repeats=settings.infer_repeats, block_s=settings.infer_block_s
        )

    section = Section("inference", "")
    section.tables = [_table(samples, flops)]
    section.targets = _targets(samples, flops)
    section.notes = _notes(samples, flops, threads) + _why(samples, flops, threads, ops)
    section.data = {
        "seconds_per_call": {str(k): v for k, v in samples.items()},
        "forward_flops_per_window": flops,
        "predictor_threads": threads,
        "operators_per_invoke": ops,
        "file_bytes": {m: (folder / f"{m}.tflite").stat().st_size for m in MODES},
    }
    return section


def _bare(path: Path, x: np.ndarray) -> Callable[[], object]:
    """One LiteRT call on `x` with nothing around it: set the input, invoke, read the output."""
    from forecaster.device.predictor import interpreter_class

    interpreter = interpreter_class()(model_path=str(path), num_threads=1)
    source = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(source["index"], list(x.shape))
    interpreter.allocate_tensors()
    target = interpreter.get_output_details()[0]["index"]

    def call() -> object:
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(target)

    return call


def _ops_per_invoke(path: Path, model: Any) -> dict[str, int]:
    """Operators one invoke runs: the main graph once, the loop body once per step, the loop
    condition once more than that."""
    from tensorflow.lite.tools import flatbuffer_utils

    steps = int(model.input_shape[1])
    main, *loop = flatbuffer_utils.read_model(str(path)).subgraphs
    cond, body = sorted(len(g.operators) for g in loop)
    return {
        "main": len(main.operators),
        "body": body,
        "condition": cond,
        "steps": steps,
        "total": len(main.operators) + steps * body + (steps + 1) * cond,
    }


def _gru_shape(model: Any) -> tuple[int, int, int, int]:
    """Steps, features, GRU units and outputs per window of the benchmark's model."""
    gru = next(layer for layer in model.layers if layer.__class__.__name__ == "GRU")
    return (
        int(model.input_shape[1]),
        int(model.input_shape[2]),
        int(gru.cell.units),
        int(np.prod(model.output_shape[1:])),
    )


def _recurrent_matmuls(state: np.ndarray, recurrent: np.ndarray, steps: int) -> None:
    """The recurrent matmuls of one batch's forward pass in numpy: one per step."""
    for _ in range(steps):
        np.matmul(state, recurrent)


def _matmuls_only(model: Any) -> bytes:
    """A LiteRT model with the GRU's loop and matmuls (input, recurrent, head) but no gates."""
    import tensorflow as tf

    steps, features, units, out = _gru_shape(model)
    rng = np.random.default_rng(0)
    kernel = tf.constant(rng.normal(0, 0.1, (features, 3 * units)), tf.float32)
    recurrent = tf.constant(rng.normal(0, 0.1, (units, 3 * units)), tf.float32)
    head = tf.constant(rng.normal(0, 0.1, (units, out)), tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, steps, features], tf.float32)])
    def forward(x: Any) -> Any:
        xp = tf.reshape(tf.reshape(x, (-1, features)) @ kernel, (-1, steps, 3 * units))

        def body(t: Any, h: Any) -> tuple[Any, Any]:
            return t + 1, (h @ recurrent + tf.gather(xp, t, axis=1))[:, :units]

        _, h = tf.while_loop(
            lambda t, h: t < steps,
            body,
            (tf.constant(0), tf.zeros((1, units))),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, units])),
        )
        return h @ head

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [forward.get_concrete_function()], forward
    )
    return bytes(converter.convert())


def _eager(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x, training=False))


def _traced(function: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(function(x))


def _limit(batch_samples: dict[str, list[float]], flops: int) -> list[float]:
    """Windows per second the measured matmul peak allows, per repeat."""
    return [matmul_flops() / t / flops for t in batch_samples[MATMUL]]


def _table(samples: dict[int, dict[str, list[float]]], flops: int) -> Table:
    batches = list(samples)
    columns = ["contender"]
    if 1 in samples:
        columns.append("batch 1: ms/call")
    columns += [f"batch {b}: windows/s" for b in batches]
    table = Table(
        columns, title="Medians of interleaved repeats; GRU(64), 48x3 windows -> 12 steps"
    )
    names = [n for n in samples[batches[0]] if n != MATMUL]
    for name in names:
        row: list[Any] = [name]
        if 1 in samples:
            row.append(median(samples[1][name]) * 1000)
        row += [b / median(samples[b][name]) for b in batches]
        table.add(*row)
    row = [f"arithmetic limit ({flops / 1e6:.2f} MFLOP/window at the matmul peak)"]
    if 1 in samples:
        row.append(None)
    row += [median(_limit(samples[b], flops)) for b in batches]
    table.add(*row)
    return table


def _per_mode(
    samples: dict[str, list[float]], against: str, modes: tuple[str, ...] = MODES
) -> dict[str, float]:
    """How many times faster each mode is than `against`, side by side."""
    return {m: ratio(samples[against], samples[lite(m)]) for m in modes}


def _describe(values: dict[str, float]) -> str:
    first, *rest = values.items()
    text = f"{first[0]} {first[1]:.1f}x"
    return text + (" (" + ", ".join(f"{m} {v:.1f}x" for m, v in rest) + ")" if rest else "")


def _targets(samples: dict[int, dict[str, list[float]]], flops: int) -> list[Target]:
    targets = []
    if 1 in samples:
        for against, goal in ((PREDICT, 200.0), (FUNCTION, 20.0)):
            values = _per_mode(samples[1], against)
            targets.append(
                Target(
                    f"batch-1 latency vs {against}",
                    f">= {goal:.0f}x lower",
                    _describe(values),
                    values["float32"] >= goal,
                )
            )
    top = max(samples)
    for against, goal in ((FUNCTION, 2.0), (PREDICT, 5.0)):
        values = _per_mode(samples[top], against)
        targets.append(
            Target(
                f"batch-{top} throughput vs {against}",
                f">= {goal:.0f}x",
                _describe(values),
                values["float32"] >= goal,
            )
        )
    for batch in (b for b in samples if b >= 512):
        limit = _limit(samples[batch], flops)
        achieved = [batch / t for t in samples[batch][lite("float32")]]
        gap = ratio(limit, achieved)
        targets.append(
            Target(
                f"batch-{batch} float32 throughput vs arithmetic limit",
                "within 2x (all cores)",
                f"{median(achieved):,.0f} windows/s vs limit {median(limit):,.0f}: "
                f"{gap:.1f}x below",
                gap <= 2.0,
            )
        )
    return targets


def _notes(samples: dict[int, dict[str, list[float]]], flops: int, threads: int) -> list[str]:
    notes = [
        f"The Predictor used {threads} cores (all): from 64 windows up it splits a batch "
        "across that many single-threaded interpreters; the numpy matmul "
        "uses numpy's BLAS threads (see the header). Peak = 2*2048^3 FLOP / matmul time, "
        f"measured in every round; FLOPs per window ({flops:,}) count the recurrent and head "
        "matmuls from the architecture.",
    ]
    one = {b: ratio(samples[b][lite("float32")], samples[b][ONE_THREAD]) for b in samples}
    notes.append(
        "Thread choice: float32 with 1 thread vs the Predictor's default, time ratio (>1: one "
        "thread is faster): " + ", ".join(f"batch {b} {v:.2f}x" for b, v in one.items()) + "."
    )
    return notes


def _why(
    samples: dict[int, dict[str, list[float]]],
    flops: int,
    threads: int,
    ops: dict[str, int],
) -> list[str]:
    """What the two probes say about the targets that depend on LiteRT's own speed."""
    notes = []
    if 1 in samples:
        one = samples[1]
        bare = median(one[BARE])
        floor = ratio(one[FUNCTION], one[BARE])
        notes.append(
            f"Batch 1, where the time goes: the bare interpreter (set the input, invoke, read "
            f"the output; no Predictor code) takes {bare * 1000:.3f} ms, "
            f"{ratio(one[BARE], one[lite('float32')]):.0%} of the Predictor's call. One invoke "
            f"runs {ops['total']:,} operators (main graph {ops['main']}, loop body "
            f"{ops['body']} x {ops['steps']} steps, loop condition {ops['condition']} x "
            f"{ops['steps'] + 1}): {bare / ops['total'] * 1e6:.2f} us per operator, most of "
            "them element-wise on 64 to 192 numbers at batch 1. Even with no Predictor code "
            "at all, LiteRT is "
            f"{floor:.1f}x faster than tf.function here"
            + (
                ": the interpreter's cost per operator, not the Predictor, keeps the ratio "
                "under 20x."
                if floor < 20
                else "."
            )
        )
    top = max(samples)
    big = samples[top]
    limit = median(_limit(big, flops)) / threads
    gru = top / median(big[ONE_THREAD])
    only = top / median(big[MATMULS_ONLY])
    notes.append(
        f"Batch {top}, one thread: the GRU's matmuls alone (same loop, no gates) run "
        f"{only:,.0f} windows/s, {limit / only:.1f}x below one core's share of the arithmetic "
        f"limit ({limit:,.0f}); the whole GRU runs {gru:,.0f}, so the gates' element-wise "
        f"operators (which the FLOP count leaves out) change the matmuls' time by "
        f"{only / gru - 1:+.0%}."
    )
    for batch in (b for b in samples if b >= 512):
        thin = batch / median(samples[batch][THIN])
        limit = median(_limit(samples[batch], flops))
        achieved = batch / median(samples[batch][lite("float32")])
        notes.append(
            f"Batch {batch}, all cores: numpy's BLAS doing only the GRU's recurrent matmuls "
            f"(batch x 64 times 64 x 192, once per step) runs {thin:,.0f} windows/s, "
            f"{limit / thin:.1f}x below the arithmetic limit measured on 2048 x 2048 "
            f"matrices; the Predictor (float32, every operator) runs {achieved:,.0f}, "
            f"{thin / achieved:.1f}x below BLAS on the same matmuls. With the gates adding "
            "little (above), the gap is LiteRT's own matmul kernel inside the recurrent loop: "
            "XNNPACK, its fast path, takes no graph with control flow."
        )
    return notes
