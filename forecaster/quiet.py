"""TensorFlow's own log lines kept off the terminal, unless asked for with `--verbose`.

TensorFlow talks on four channels. Its C++ logger obeys TF_CPP_MIN_LOG_LEVEL, which must be set
before TensorFlow first loads (and is inherited by child processes). But while its libraries load,
absl writes "All log messages before absl::InitializeLog() ..." and oneDNN's "custom operations
are on" notice straight to file descriptor 2, once per library, whatever that level says; so the
first `import tensorflow` runs with descriptor 2 caught and those lines dropped. Then there are the
`tensorflow` and `absl` Python loggers (tf.function retracing warnings) and Python warnings.
TF_ENABLE_ONEDNN_OPTS=0 would silence the oneDNN notice too, but it changes the numbers: it is
left alone.

Only stdlib here: the device path uses `filtered_stderr` for LiteRT's start-up line.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

VERBOSE_ENV = "FORECASTER_VERBOSE"  # "1": show TensorFlow's lines; children inherit it
_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
_USER_LOG_LEVEL = os.environ.get(_LOG_LEVEL_ENV)  # as the user's environment had it

# Lines TensorFlow (and absl under it) writes to stderr on its own.
_TENSORFLOW_LINE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "  # absl's C++ format
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\] "  # TensorFlow's older C++ format
    r"|To enable the following instructions: .*rebuild TensorFlow"  # cpu_feature_guard's 2nd line
    r"|(DEBUG|INFO|WARNING|ERROR|CRITICAL):(tensorflow|absl):"  # its Python loggers, unconfigured
)


def set_defaults() -> None:
    """TensorFlow's C++ logger quiet by default, in this process and the ones it starts."""
    os.environ.setdefault(_LOG_LEVEL_ENV, "3")


def is_tensorflow_line(line: str) -> bool:
    """A line TensorFlow wrote by itself rather than one of forecaster's own."""
    return _TENSORFLOW_LINE.match(line) is not None


def verbose() -> bool:
    """Whether TensorFlow's own lines were asked for (`--verbose` or FORECASTER_VERBOSE=1)."""
    return os.environ.get(VERBOSE_ENV, "").lower() in ("1", "true", "yes")


def quiet_tensorflow(*, show: bool = False) -> None:
    """Keep TensorFlow's own lines off stderr from now on in this process, unless `show`.

    Called by the command line and the converter child, never on import: a library does not
    redirect its user's file descriptors. `show` is passed to child processes in the environment.
    """
    if show or verbose():
        os.environ[VERBOSE_ENV] = "1"
        os.environ[_LOG_LEVEL_ENV] = _USER_LOG_LEVEL or "0"
        return
    os.environ[_LOG_LEVEL_ENV] = _USER_LOG_LEVEL or "3"
    warnings.filterwarnings("ignore", module=r"(tensorflow|keras|absl)(\.|$)")
    logging.getLogger("tensorflow").setLevel(logging.CRITICAL)
    if "tensorflow" in sys.modules:
        _quiet_absl()
    elif not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


def _quiet_absl() -> None:
    # Only once absl has set up its own logger class (TensorFlow imports it).
    if "absl.logging" in sys.modules:
        logging.getLogger("absl").setLevel(logging.CRITICAL)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the other finders do, and loads it with its load-time lines dropped."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _QuietLoader(spec.loader, self)
                return spec
        return None


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run with file descriptor 2 filtered."""

    def __init__(self, loader: Any, finder: _QuietImport):
        self.loader, self.finder = loader, finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        # The module keeps TensorFlow's own loader, as if this one had never been there.
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with filtered_stderr(lambda line: not is_tensorflow_line(line)):
            self.loader.exec_module(module)
        _quiet_absl()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


@contextmanager
def filtered_stderr(keep: Callable[[str], bool]) -> Iterator[None]:
    """Catch what is written to file descriptor 2 meanwhile; pass on the lines `keep` accepts.

    C++ libraries write there directly, with no Python switch. What is kept is written back
    byte for byte, in order, when the block ends.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no standard error to keep clean (a daemon, say)
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [
                line
                for line in capture.read().splitlines(keepends=True)
                if keep(line.decode(errors="replace"))
            ]
            if kept:
                os.write(2, b"".join(kept))
