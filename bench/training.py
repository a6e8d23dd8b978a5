"""2. GRU vs LSTM training cost at equal units, layers and window, on the same windows.

Seconds per epoch are measured side by side: the variants take turns one training step at a
time, and an epoch is the median step times the steps per epoch. Then both cells train to
convergence with forecaster's own `train` (early stopping, seeded, deterministic ops), which
also makes the runs the export, inference and streaming sections use.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from bench import fixtures
from bench.fixtures import Context
from bench.flops import forward_flops
from bench.results import Section, Table
from bench.timing import median, ratio

if TYPE_CHECKING:
    import keras

    from forecaster.model.windows import Prepared

# variant -> (what changes against forecaster's recipe, exportable by forecaster today)
VARIANTS: dict[str, tuple[str, str]] = {
    "gru": ("forecaster's recipe, batch 64", "yes"),
    "lstm": ("forecaster's recipe, batch 64", "yes"),
    "gru_reset_before": ("reset_after=False (the original GRU)", "no: export needs reset_after"),
    "gru_unroll": ("unroll=True", "yes (same weights)"),
    "gru_jit": ("compile(jit_compile=True): XLA", "yes (training option)"),
    "lstm_jit": ("compile(jit_compile=True): XLA", "yes (training option)"),
    "gru_batch256": ("batch 256", "yes (training option)"),
    "lstm_batch256": ("batch 256", "yes (training option)"),
}
# The thread-probe label of TensorFlow's own choice of pools (0/0 leaves them unset).
DEFAULT_THREADS = "default"
# Graph bookkeeping, not kernels: left out of the per-step op count.
_NOT_KERNELS = {"Const", "Identity", "IdentityN", "NoOp"}


def _recompiled(model: keras.Model, **options: Any) -> keras.Model:
    """The same model compiled like forecaster compiles it, plus `options`."""
    import keras

    optimizer = keras.optimizers.Adam.from_config(model.optimizer.get_config())
    model.compile(optimizer=optimizer, loss="mse", metrics=["mae"], **options)
    return model


def _reset_before(model: keras.Model) -> keras.Model:
    """A copy of a GRU model whose GRU layers apply the reset gate before the matmul."""
    import keras

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if isinstance(layer, keras.layers.GRU):
            config["reset_after"] = False
        return layer.__class__.from_config(config)

    return _recompiled(keras.models.clone_model(model, clone_function=clone))


def build_variant(data: Prepared, name: str) -> tuple[keras.Model, int]:
    """The model of a variant and its batch size."""
    import keras

    keras.utils.set_random_seed(fixtures.SEED)
    cell = name.split("_", maxsplit=1)[0]
    if name == "gru_reset_before":
        return _reset_before(fixtures.product_model(data, "gru")), 64
    if name == "gru_unroll":
        return fixtures.product_model(data, "gru", unroll=True), 64
    model = fixtures.product_model(data, cell)
    if name.endswith("_jit"):
        return _recompiled(model, jit_compile=True), 64
    return model, 256 if name.endswith("batch256") else 64


def step_times(
    data: Prepared, names: list[str], steps: int, log: Callable[[str], None]
) -> dict[str, list[float]]:
    """Seconds of each training step, per variant, with the variants taking turns step by step.

    Interleaving single steps (`train_on_batch`, the same compiled train function `fit` runs)
    spreads every burst of load from other processes over all variants alike; the median step
    is then robust to the bursts. Windows come in one shuffled order, as `fit(shuffle=True)`.
    """
    train = data.windows["train"]
    order = np.random.default_rng(fixtures.SEED).permutation(len(train))
    models: dict[str, tuple[Any, int]] = {}
    for name in names:
        model, batch = build_variant(data, name)
        log(f"tracing {name}")
        for _ in range(2):  # the first call traces (and compiles, with XLA)
            model.train_on_batch(train.x[order[:batch]], train.y[order[:batch]])
        models[name] = (model, batch)
    log(f"timing {len(names)} variants x {steps} interleaved steps")
    times: dict[str, list[float]] = {name: [] for name in names}
    for step in range(steps):
        shift = step % len(names)
        for name in names[shift:] + names[:shift]:
            model, batch = models[name]
            start = step * batch % (len(train) - batch)
            picks = order[start : start + batch]
            x, y = train.x[picks], train.y[picks]
            started = time.perf_counter()
            model.train_on_batch(x, y)
            times[name].append(time.perf_counter() - started)
    return times


def per_epoch(data: Prepared, name: str, seconds: list[float]) -> list[float]:
    """Step seconds scaled to seconds per epoch of every training window at the variant's batch."""
    batch = 256 if name.endswith("batch256") else 64
    return [s * math.ceil(len(data.windows["train"]) / batch) for s in seconds]


def recurrent_ops(model: keras.Model, batch: int = 64) -> tuple[int, int, dict[str, int]]:
    """Kernel ops per time step of one training step: forward loop body, backward loop body."""
    import tensorflow as tf

    @tf.function
    def step(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        return tape.gradient(loss, model.trainable_variables)

    shape_in = (batch, *model.input_shape[1:])
    shape_out = (batch, *model.output_shape[1:])
    graph = step.get_concrete_function(
        tf.TensorSpec(shape_in, tf.float32), tf.TensorSpec(shape_out, tf.float32)
    ).graph.as_graph_def()
    library = {f.signature.name: f for f in graph.library.function}
    bodies = [
        library[node.attr["body"].func.name]
        for node in graph.node
        if node.op in ("While", "StatelessWhile")
    ]
    counts = [Counter(n.op for n in body.node_def if n.op not in _NOT_KERNELS) for body in bodies]
    forward = sum(counts[0].values()) if counts else 0
    backward = sum(sum(c.values()) for c in counts[1:])
    return forward, backward, dict(counts[0]) if counts else {}


def thread_probe(ctx: Context, intra: int, inter: int) -> dict[str, list[float]]:
    """GRU and LSTM blocks in a child process whose TensorFlow uses the given thread pools."""
    settings = json.dumps(asdict(ctx.settings))
    command = [
        sys.executable,
        "-m",
        "bench.train_probe",
        "--settings",
        settings,
        "--work",
        str(ctx.work),
        "--intra",
        str(intra),
        "--inter",
        str(inter),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"thread probe {intra}/{inter} failed: {done.stderr[-500:]}")
    samples: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return samples


def _converge(ctx: Context) -> dict[str, dict[str, Any]]:
    """Train both cells with forecaster's `train`; return their epoch logs."""
    found: dict[str, dict[str, Any]] = {}
    for cell in ("gru", "lstm"):
        ctx.log(f"training {cell.upper()}(64) to convergence (forecaster train)")

        def on_epoch(epoch: int, total: int, logs: dict[str, float], cell: str = cell) -> None:
            ctx.log(
                f"{cell} epoch {epoch}/{total} val_loss {logs.get('val_loss', float('nan')):.3g}"
            )

        outcome = fixtures.train_run(ctx, cell, on_epoch)
        result = outcome.result
        found[cell] = {
            "params": result.params,
            "epoch_seconds": list(result.epoch_seconds),
            "val_loss": list(result.history.get("val_loss", [])),
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "seconds": result.seconds,
            "test_mase": outcome.evaluation.scores["model"]["mase"],
        }
    return found


def run(ctx: Context) -> Section:
    """Speed variants side by side, op counts, thread pools, then convergence."""
    settings = ctx.settings
    data = fixtures.prepared(ctx)
    n_train = len(data.windows["train"])
    names = [n for n in settings.speed_variants if n in VARIANTS]
    steps = step_times(data, names, settings.speed_steps, ctx.log)
    epochs = {name: per_epoch(data, name, samples) for name, samples in steps.items()}

    ops = {}
    flops = {}
    params = {}
    for cell in ("gru", "lstm"):
        model = fixtures.product_model(data, cell)
        ops[cell] = recurrent_ops(model)
        flops[cell] = forward_flops(model)
        params[cell] = int(model.count_params())

    threads: dict[str, dict[str, list[float]]] = {}
    for intra, inter in settings.thread_configs:
        ctx.log(f"thread probe: intra-op {intra}, inter-op {inter} (child process)")
        probe = thread_probe(ctx, intra, inter)
        label = DEFAULT_THREADS if (intra, inter) == (0, 0) else f"{intra}/{inter}"
        threads[label] = {k: per_epoch(data, k, v) for k, v in probe.items()}

    converged = _converge(ctx)

    speed = Table(
        [
            "variant",
            "change",
            "s/epoch (median)",
            "best",
            "vs GRU",
            "vs LSTM",
            "runs",
            "exportable",
        ],
        title=f"Seconds per epoch of {n_train:,} windows of {fixtures.WINDOW}x"
        f"{data.windows['train'].x.shape[2]}, 64 units, 1 layer: the median training step x "
        f"steps per epoch, from {settings.speed_steps} steps per variant, variants taking turns",
    )
    for name in names:
        change, exportable = VARIANTS[name]
        speed.add(
            name,
            change,
            median(epochs[name]),
            min(epochs[name]),
            f"{ratio(epochs[name], epochs['gru']):.2f}x" if "gru" in epochs else None,
            f"{ratio(epochs[name], epochs['lstm']):.2f}x" if "lstm" in epochs else None,
            len(epochs[name]),
            exportable,
        )
    reference = threads.get(DEFAULT_THREADS, {}).get("gru")
    for label, probe in threads.items():
        for cell, samples in probe.items():
            speed.add(
                f"{cell}, threads {label}",
                "TensorFlow's own thread pools, own process"
                if label == DEFAULT_THREADS
                else f"TensorFlow intra-op/inter-op threads {label}, own process",
                median(samples),
                min(samples),
                f"{median(samples) / median(reference):.2f}x vs default threads"
                if reference
                else None,
                None,
                len(samples),
                "yes (training option)",
            )

    converge = _convergence_table(converged, settings.converge_epochs)
    section = Section("training", "", tables=[speed, converge])
    section.notes = _notes(epochs, ops, flops, params, n_train, converged, threads)
    section.data = {
        "seconds_per_epoch": epochs,
        "ops_per_step": {
            k: {"forward": v[0], "backward": v[1], "forward_ops": v[2]} for k, v in ops.items()
        },
        "forward_flops_per_window": flops,
        "params": params,
        "threads": threads,
        "convergence": converged,
        "train_windows": n_train,
    }
    return section


def _convergence_table(converged: dict[str, dict[str, Any]], cap: int) -> Table:
    """Epochs and seconds until each cell reaches the validation loss both cells reach."""
    worst = max(min(c["val_loss"]) for c in converged.values() if c["val_loss"])
    goal = worst * 1.1
    table = Table(
        [
            "cell",
            "params",
            "epochs run",
            "stopped early",
            "best epoch",
            "best val loss",
            f"epochs to val loss {goal:.3g}",
            f"seconds to val loss {goal:.3g}",
            "s/epoch (median)",
            "test MASE",
        ],
        title=f"Training to convergence with `forecaster train` (early stopping, capped at {cap} "
        f"epoch(s) for time). Common goal: 1.1x the worse of the two best validation losses "
        f"= {goal:.3g}",
    )
    for cell, c in converged.items():
        reached = next((i for i, v in enumerate(c["val_loss"]) if v <= goal), None)
        table.add(
            cell.upper(),
            c["params"],
            c["epochs_run"],
            "yes" if c["epochs_run"] < cap else f"no: ran the {cap}-epoch cap",
            c["best_epoch"],
            min(c["val_loss"]) if c["val_loss"] else None,
            reached + 1 if reached is not None else "not reached",
            float(np.sum(c["epoch_seconds"][: reached + 1])) if reached is not None else None,
            median(c["epoch_seconds"]),
            c["test_mase"],
        )
    return table


def _notes(
    epochs: dict[str, list[float]],
    ops: dict[str, tuple[int, int, dict[str, int]]],
    flops: dict[str, int],
    params: dict[str, int],
    n_train: int,
    converged: dict[str, dict[str, Any]],
    threads: dict[str, dict[str, list[float]]],
) -> list[str]:
    notes = []
    gru_ops, lstm_ops = sum(ops["gru"][:2]), sum(ops["lstm"][:2])
    notes.append(
        "Why GRU is not cheaper despite fewer FLOPs: per window GRU(64) does "
        f"{flops['gru'] / 1e6:.2f} MFLOP forward vs LSTM(64) {flops['lstm'] / 1e6:.2f} "
        f"({flops['gru'] / flops['lstm']:.2f}x; params "
        f"{params['gru']:,} vs {params['lstm']:,}), but Keras' GRU cell runs {ops['gru'][0]} "
        f"kernel ops per time step forward + {ops['gru'][1]} backward = {gru_ops}, vs "
        f"{ops['lstm'][0]} + {ops['lstm'][1]} = {lstm_ops} for the LSTM cell "
        f"({gru_ops / lstm_ops:.2f}x): it splits the bias every step, slices the recurrent "
        "projection three ways and mixes the state with z*h + (1-z)*hh. At batch 64 and 64 "
        "units each op is a few microseconds of dispatch around a tiny matmul, so op count, "
        "not arithmetic, sets the epoch time on CPU."
    )
    if "gru" in epochs and "lstm" in epochs:
        steps = n_train / 64 * 48
        gru_us = median(epochs["gru"]) / (steps * gru_ops) * 1e6
        lstm_us = median(epochs["lstm"]) / (steps * lstm_ops) * 1e6
        notes.append(
            f"Per-op cost implied (s/epoch / (batches x 48 steps x ops per step)): GRU "
            f"{gru_us:.1f} us, LSTM {lstm_us:.1f} us per kernel op, within "
            f"{max(gru_us, lstm_us) / min(gru_us, lstm_us):.2f}x of each other, while their "
            f"FLOPs per op differ {flops['lstm'] / lstm_ops / (flops['gru'] / gru_ops):.2f}x."
        )
    if "gru_jit" in epochs and "gru" in epochs:
        notes.append(
            "XLA (`jit_compile=True`) fuses the per-step ops: GRU "
            f"{ratio(epochs['gru'], epochs['gru_jit']):.2f}x faster"
            + (
                f", LSTM {ratio(epochs['lstm'], epochs['lstm_jit']):.2f}x"
                if "lstm_jit" in epochs and "lstm" in epochs
                else ""
            )
            + ". Keras' `jit_compile='auto'` turns XLA off on CPU-only machines, so forecaster "
            "trains without it today."
        )
    if threads:
        notes.append(
            "Thread-pool rows ran one after another in their own processes (TensorFlow fixes "
            "its pools when it starts), so they compare medians across processes, not paired "
            "repeats; the reference is a process with TensorFlow's default pools."
        )
    notes.append(
        "`best` is the fastest block, the one least disturbed by other processes: on this "
        "shared machine block times are bimodal (many blocks of every variant take about "
        "twice as long as the rest), so read the paired ratios and the best column together."
    )
    if len(converged) == 2:
        seconds = {c: float(np.sum(v["epoch_seconds"])) for c, v in converged.items()}
        notes.append(
            "Convergence runs use forecaster's defaults (deterministic ops, early stopping "
            "restoring the best epoch); their s/epoch include validation and determinism, so "
            f"they differ from the table above. Total: GRU {seconds['gru']:.0f} s, LSTM "
            f"{seconds['lstm']:.0f} s."
        )
    return notes
