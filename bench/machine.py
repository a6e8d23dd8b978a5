"""The machine and library versions a benchmark ran on, read without importing TensorFlow."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = (
    "forecaster",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "ai-edge-litert",
    "keras-tuner",
    "numpy",
    "pandas",
    "scikit-learn",
    "typer",
    "rich",
)
ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def simd() -> str:
    """The vector extensions that set the float32 peak (from /proc/cpuinfo flags)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                found = [f for f in ("avx512f", "avx2", "fma", "neon", "asimd") if f in flags]
                return ", ".join(found) or "none of avx2/avx512/fma"
    except OSError:
        pass
    return "unknown"


def memory_gib() -> float | None:
    """Total memory in GiB, from /proc/meminfo."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the numbers."""
    found = {}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def blas() -> str:
    """numpy's BLAS library and its thread count (threadpoolctl comes with scikit-learn)."""
    try:
        import numpy  # noqa: F401  # threadpoolctl lists only libraries already loaded
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        return ", ".join(
            f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
            for p in pools
        )
    except ImportError:
        return "unknown"


def git_revision() -> str:
    """The checked-out commit, with '+ local changes' when the tree is dirty (read-only git)."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" + local changes" if dirty else "")


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def describe() -> dict[str, Any]:
    """Everything for the header of results.md."""
    uname = platform.uname()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "simd": simd(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_gib": memory_gib(),
        "os": f"{uname.system} {uname.release} ({uname.machine})",
        "python": platform.python_version(),
        "blas": blas(),
        "gpu": "none visible" if not _has_gpu_device() else "present",
        "versions": versions(),
        "git": git_revision(),
    }


def _has_gpu_device() -> bool:
    return any(Path("/dev").glob("nvidia[0-9]*"))


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages: how busy the machine was."""
    return [round(v, 2) for v in os.getloadavg()]
