"""Keras Tuner's chief/worker mode made bounded: environment, connection checks, the oracle server.

Keras Tuner reads KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT when a tuner
is built. Its workers wait up to an hour for an unreachable chief (`wait_for_ready` with a 60-minute
timeout, keras-team/keras-tuner#990), and its chief polls every 20 s before exiting. Here a worker
checks the connection first with a short timeout, every call gets the same timeout, and the chief
serves each cell's oracle on its own port from a loop that notices the end within a second.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from forecaster.tune.config import Distributed, TuningError

_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def worker_id(distributed: Distributed) -> str:
    """A worker's tuner id: given, or unique per machine and process."""
    return distributed.tuner_id or f"worker-{socket.gethostname()}-{os.getpid()}"


@contextmanager
def environment(distributed: Distributed | None, cell_index: int) -> Iterator[None]:
    """Set (or clear) Keras Tuner's distribution variables while one cell's tuner runs."""
    saved = {name: os.environ.get(name) for name in _ENV}
    try:
        for name in _ENV:
            os.environ.pop(name, None)
        if distributed is not None:
            os.environ["KERASTUNER_TUNER_ID"] = (
                "chief" if distributed.role == "chief" else worker_id(distributed)
            )
            os.environ["KERASTUNER_ORACLE_IP"] = distributed.host
            os.environ["KERASTUNER_ORACLE_PORT"] = str(distributed.port + cell_index)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def address(distributed: Distributed, cell_index: int) -> str:
    """HOST:PORT of one cell's oracle."""
    host = f"[{distributed.host}]" if ":" in distributed.host else distributed.host
    return f"{host}:{distributed.port + cell_index}"


def wait_for_oracle(distributed: Distributed, cell_index: int, cell: str) -> None:
    """Block until the chief's oracle for `cell` answers, or raise after the timeout."""
    import grpc

    target = address(distributed, cell_index)
    channel = grpc.insecure_channel(target)
    try:
        grpc.channel_ready_future(channel).result(timeout=distributed.timeout)
    except grpc.FutureTimeoutError:
        raise TuningError(
            f"cannot reach the chief's {cell.upper()} oracle at {target} after "
            f"{distributed.timeout:g} s; start `forecaster tune ... --distributed chief --oracle "
            f"{distributed.host}:{distributed.port}` first, check the address and firewall, or "
            "raise --oracle-timeout"
        ) from None
    finally:
        channel.close()


def set_call_timeout(seconds: float) -> None:
    """Bound every worker-to-chief call (Keras Tuner waits an hour by default)."""
    from keras_tuner.src.distribute import oracle_client

    oracle_client.TIMEOUT = seconds


def rpc_error(exc: Exception, distributed: Distributed, cell_index: int) -> TuningError:
    """A one-line error for a lost chief."""
    code = getattr(exc, "code", lambda: None)()
    name = getattr(code, "name", "error")
    return TuningError(
        f"lost the chief's oracle at {address(distributed, cell_index)} ({name}); the chief "
        "stopped or is unreachable. Restart the chief with --resume, then the workers"
    )


class OracleServer:
    """One cell's oracle served over gRPC by the chief."""

    def __init__(self, oracle: Any, distributed: Distributed, cell_index: int) -> None:
        from concurrent import futures

        import grpc
        from keras_tuner.src import protos
        from keras_tuner.src.distribute.oracle_chief import OracleServicer

        self.oracle = oracle
        self.servicer = OracleServicer(oracle)
        self.target = address(distributed, cell_index)
        # One thread, like Keras Tuner's own server: the oracle is locked per call anyway.
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        protos.get_service_grpc().add_OracleServicer_to_server(self.servicer, self.server)
        try:
            bound = self.server.add_insecure_port(self.target)
        except RuntimeError:
            bound = 0
        if not bound:
            raise TuningError(
                f"cannot listen on {self.target}: the port is in use or the address is not "
                "this machine's; choose another --oracle HOST:PORT (cell i uses PORT + i)"
            )
        self.server.start()

    @property
    def finished(self) -> bool:
        """Every worker that asked has been told to stop, and no trial is running."""
        if not self.servicer.stop_triggered:
            return False
        from keras_tuner.src.distribute.oracle_chief import exit_chief

        return bool(exit_chief(self.oracle))

    def stop(self, grace: float = 2.0) -> None:
        """Stop serving; calls in flight get `grace` seconds to finish."""
        self.server.stop(grace).wait(grace + 1)


def serve_until_finished(servers: list[OracleServer], poll: float = 0.2) -> None:
    """Wait until every cell's search has finished (the servers keep answering meanwhile)."""
    while not all(server.finished for server in servers):
        time.sleep(poll)
