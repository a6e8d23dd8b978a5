"""Side-by-side timing: interleaved repeats, medians, per-repeat ratios, and child processes."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


def forecaster_command(python: str = sys.executable) -> list[str]:
    """The `forecaster` script beside this interpreter, or `python -m forecaster` without one."""
    script = Path(python).with_name("forecaster")
    return [str(script)] if script.exists() else [python, "-m", "forecaster"]


# A block never runs a fast call more often than this, whatever the calibration says.
MAX_CALLS_PER_BLOCK = 20_000
# Linux carries a process's peak RSS across fork and exec, so a command started straight from a
# big benchmark process would report at least that process's size. This few-MB launcher starts
# the command from a fresh, small interpreter and reports the command's own peak (wait4).
_LAUNCHER = """
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command gets it; wait for it to finish
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values."""
    return float(statistics.median(values)) if values else float("nan")


def ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Median of the per-repeat ratios of two contenders measured side by side."""
    pairs = [a / b for a, b in zip(numerator, denominator, strict=False) if b > 0]
    return median(pairs)


def interleave(
    contenders: Mapping[str, Callable[[], object]],
    *,
    repeats: int,
    block_s: float | None,
) -> dict[str, list[float]]:
    """Seconds per call of each contender: `repeats` samples each, taken in rotating order.

    With `block_s`, each contender is warmed up (first calls trace, allocate and resize), then
    calibrated so one sample is a block of calls lasting about `block_s`; with None, a sample is
    one call and warming up is the caller's job. Repeat r runs every contender once, starting
    from a different one each time, so drift and neighbours hit all of them alike.
    """
    names = list(contenders)
    calls = dict.fromkeys(names, 1)
    for name in names:
        if block_s is None:
            break
        contenders[name]()
        started = time.perf_counter()
        contenders[name]()
        once = max(time.perf_counter() - started, 1e-7)
        calls[name] = max(1, min(MAX_CALLS_PER_BLOCK, math.ceil(block_s / once)))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn, count = contenders[name], calls[name]
            started = time.perf_counter()
            for _ in range(count):
                fn()
            samples[name].append((time.perf_counter() - started) / count)
    return samples


@dataclass(frozen=True)
class Measured:
    """A finished child process: wall time, its own peak resident memory (or NaN), exit code."""

    seconds: float
    peak_rss_mb: float
    returncode: int
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """Exited with 0 in time."""
        return self.returncode == 0 and not self.timed_out

    def failure(self) -> str:
        """The last lines of stderr, for a report."""
        if self.timed_out:
            return f"timed out after {self.seconds:.0f} s"
        tail = [line for line in self.stderr.strip().splitlines() if line.strip()][-3:]
        return f"exit code {self.returncode}: " + " / ".join(tail)


def run_measured(
    command: Sequence[str],
    *,
    timeout_s: float,
    stdout: int | None = subprocess.DEVNULL,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stop_signal: int = signal.SIGKILL,
    measure_rss: bool = False,
) -> Measured:
    """Run a command; measure its wall time and, with `measure_rss`, its own peak RSS.

    On timeout the child's process group gets `stop_signal` (SIGINT lets a command clean up),
    and SIGKILL 30 s later if it is still there. The peak RSS comes from a small launcher
    (a few MB, the floor of the measurement) that adds about 20 ms of start-up to the time.
    """
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as err:
        rss_file = Path(tmp) / "rss"
        argv = list(command)
        if measure_rss:
            argv = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(rss_file), *argv]
        started = time.perf_counter()
        process = subprocess.Popen(
            argv,
            stdout=stdout,
            stderr=err,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # its own process group, so a timeout stops its children
        )
        timed_out = threading.Event()
        # Both timers are cancelled once the child is reaped, before its id can be reused.
        kill_later = threading.Timer(30.0, _signal_group, (process.pid, signal.SIGKILL))

        def stop() -> None:
            timed_out.set()
            _signal_group(process.pid, stop_signal)
            if stop_signal != signal.SIGKILL:
                kill_later.start()

        timer = threading.Timer(timeout_s, stop)
        timer.start()
        try:
            _, status, _ = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
            kill_later.cancel()
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", errors="replace")
        peak = float("nan")
        if measure_rss and rss_file.exists():
            peak = int(rss_file.read_text()) / 1024  # KiB on Linux
    return Measured(
        seconds=seconds,
        peak_rss_mb=peak,
        returncode=process.returncode,
        stderr=text,
        timed_out=timed_out.is_set(),
    )


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
