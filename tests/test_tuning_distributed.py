"""Keras Tuner's chief/worker mode on loopback: one chief and two workers as separate processes,
bounded in time, giving what one process finds; and an unreachable chief."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forecaster.cli.app import app
from forecaster.errors import ConfigError
from forecaster.tune.directory import check_worker_identity
from tests.test_cli_data import one_line_error
from tests.test_tuning import TINY, assert_same_result, reference_search, tiny_csv

# Generous: three processes import TensorFlow at once on two cores.
PROCESS_TIMEOUT = 300


def free_port_pair() -> int:
    """A loopback port p with p + 1 also free (cell i is served on p + i)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65000:
            continue
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return int(port)
    raise AssertionError("no two consecutive free ports on 127.0.0.1")


def clean_env() -> dict[str, str]:
    """This environment without Keras Tuner's distribution variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}


@pytest.mark.slow
def test_chief_and_two_workers_find_what_one_process_finds(tmp_path):
    reference, _ = reference_search()
    out = tmp_path / "shared"
    port = free_port_pair()
    argv = [sys.executable, "-m", "forecaster", "tune", str(tiny_csv()), *TINY, "--out", str(out)]
    cluster = ["--oracle", f"127.0.0.1:{port}", "--oracle-timeout", "2m"]
    processes = {
        "chief": [*argv, *cluster, "--distributed", "chief"],
        "worker 1": [*argv, *cluster, "--distributed", "worker"],
        "worker 2": [*argv, *cluster, "--distributed", "worker"],
    }
    started = time.monotonic()
    running = {
        name: subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
            cwd=tmp_path,
        )
        for name, command in processes.items()
    }
    outputs = {}
    try:
        for name, process in running.items():
            left = PROCESS_TIMEOUT - (time.monotonic() - started)
            stdout, stderr = process.communicate(timeout=max(left, 1))
            outputs[name] = (process.returncode, stdout, stderr)
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    for name, (code, stdout, stderr) in outputs.items():
        assert code == 0, f"{name} exited with {code}:\n{stdout}\n{stderr}"
    for name in ("worker 1", "worker 2"):
        assert "Worker done:" in outputs[name][1]
    chief_out = " ".join(outputs["chief"][1].split())
    assert "Winner:" in chief_out and "Search:" not in chief_out  # no Keras Tuner tables
    ran = sum(
        len([ln for ln in outputs[n][2].splitlines() if ln.startswith("trial ")])
        for n in ("worker 1", "worker 2")
    )
    assert ran == 4  # every trial ran exactly once, on one of the workers
    assert_same_result(out, reference)
    # Workers kept their own tuner files; the chief's state is the shared oracle.
    names = {p.name for p in (out / "tuner" / "gru").iterdir()}
    assert {"oracle.json", "chief.json"} <= names


def test_unreachable_chief_is_an_error_not_a_hang(runner, tmp_path):
    port = free_port_pair()
    started = time.monotonic()
    result = runner.invoke(
        app,
        [
            "tune",
            str(tiny_csv()),
            "-t",
            "temp",
            "--out",
            str(tmp_path / "shared"),
            "--distributed",
            "worker",
            "--oracle",
            f"127.0.0.1:{port}",
            "--oracle-timeout",
            "1s",
        ],
    )
    assert one_line_error(result) == (
        f"Error: cannot reach the chief's GRU oracle at 127.0.0.1:{port} after 1 s; start "
        f"`forecaster tune ... --distributed chief --oracle 127.0.0.1:{port}` first, check the "
        "address and firewall, or raise --oracle-timeout"
    )
    assert time.monotonic() - started < 15
    assert not (tmp_path / "shared").exists()


def test_a_worker_refuses_a_different_search(tmp_path):
    out = tmp_path / "shared"
    out.mkdir()
    record = {"schema_version": 1, "identity": {"file_sha256": "a" * 64, "seed": 1}}
    (out / "search.json").write_text(json.dumps(record))
    check_worker_identity(out, {"file_sha256": "a" * 64, "seed": 1})
    with pytest.raises(ConfigError) as caught:
        check_worker_identity(out, {"file_sha256": "a" * 64, "seed": 2})
    assert str(caught.value) == (
        f"the chief's search in {out} uses a different --seed (1 then, 2 now); start the worker "
        "with the chief's data and search options"
    )
    with pytest.raises(ConfigError, match=r"search\.json is missing"):
        check_worker_identity(Path(tmp_path / "nowhere"), {})
