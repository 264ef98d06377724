"""TensorFlow and Keras imported without start-up chatter, and without needless collection.

Importing TensorFlow prints, straight to file descriptor 2 and before its logging reads
TF_CPP_MIN_LOG_LEVEL, lines such as "All log messages before absl::InitializeLog() ...",
"oneDNN custom operations are on ...", "Could not find cuda drivers ..." and, at device
discovery, "failed call to cuInit". `install()` (run when `gencompile.runtime` is imported,
importing nothing itself) wraps the first `import tensorflow`: descriptor 2 goes to a
temporary file during the import and device discovery, and every line that is not such
noise is written back afterwards. With a GPU, or if the import fails, every line is
written back: the messages matter then.

The same hook pauses Python's cyclic garbage collector while the first of `keras` and
`tensorflow` imports (the other imports inside it), then freezes (`gc.freeze`) the objects
that exist. The import allocates about half a million objects that live as long as the
process; every full collection walks them all and finds no garbage: seven of them during
the import (0.25-0.45 s of a 4-5 s import on two cores), then 0.2-0.3 s for each one
while training. Frozen, they are never walked again; objects made later are collected as
ever.
"""

from __future__ import annotations

import gc
import importlib.abc
import importlib.machinery
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from types import ModuleType
from typing import Any

# C++ logging below warnings (info lines) is noise on a command line; errors still show.
LOG_LEVEL = "2"
FRAMEWORKS = ("keras", "tensorflow")  # imported with the collector paused
NOISE = re.compile(
    r"absl::InitializeLog|oneDNN custom operations|cuda drivers|cuInit|cudart_stub"
    r"|cpu_feature_guard|rebuild TensorFlow with the appropriate compiler flags"
    r"|Unable to register cu(DNN|FFT|BLAS) factory|computation_placer|TF-TRT Warning"
)

# TensorFlow's grappler remapper fuses Conv2D + BiasAdd + LeakyRelu although the gradient
# (LeakyReluGrad) still reads the BiasAdd, then rejects its own rewrite and logs that as an
# error: the graph runs unfused and its numbers are unchanged. Every DCGAN-style
# discriminator (a convolution, leaky_relu, then flatten or pooling) hits it, on every run.
HARMLESS_ERRORS = re.compile(
    r"remapper failed: INVALID_ARGUMENT: Mutation::Apply error: fanout '[^']*LeakyReluGrad'"
)


def install() -> None:
    """Quiet the first `import tensorflow` of this process and pause the collector while
    the frameworks import (nothing if TensorFlow is already imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", LOG_LEVEL)
    if "tensorflow" in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: nested pauses leave it to the outermost."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def without_noise(text: str, has_gpu: bool) -> str:
    """`text` without the start-up noise lines (all of it kept when there is a GPU)."""
    if has_gpu:
        return text
    return "".join(line for line in text.splitlines(keepends=True) if not NOISE.search(line))


@contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Send descriptor 2 to a temporary file; the list gets its text on exit."""
    sys.stderr.flush()
    saved = os.dup(2)
    text: list[str] = []
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield text
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text.append(sink.read().decode("utf-8", "replace"))


class _Loader(importlib.abc.Loader):
    """Executes a framework's module with the collector paused, and freezes what exists
    after the outermost; `tensorflow` also quietly."""

    def __init__(self, loader: Any, quiet: bool = True):
        self.loader = loader
        self.quiet = quiet

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        assert module.__spec__ is not None  # the import system sets it before exec_module
        module.__loader__ = module.__spec__.loader = self.loader  # the real one from now on
        outermost = gc.isenabled()
        with collector_paused():
            if self.quiet:
                self.exec_quietly(module)
            else:
                self.loader.exec_module(module)
            if outermost:  # frozen before the collector runs again (see the docstring)
                gc.freeze()

    def exec_quietly(self, module: ModuleType) -> None:
        text: list[str] = []
        has_gpu = True  # until known otherwise: a failed import shows everything
        try:
            with captured_stderr() as text:
                self.loader.exec_module(module)
                # Device discovery prints the rest (cuInit): inside the capture too.
                has_gpu = bool(module.config.list_physical_devices("GPU"))
        finally:
            sys.stderr.write(without_noise("".join(text), has_gpu))
            sys.stderr.flush()


class _Finder(importlib.abc.MetaPathFinder):
    """Finds `keras` and `tensorflow` as the path finder does, each with a loader that
    pauses the collector (and quiets TensorFlow); once each."""

    def __init__(self) -> None:
        self.waiting = {name for name in FRAMEWORKS if name not in sys.modules}

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name not in self.waiting:
            return None
        self.waiting.discard(name)
        if not self.waiting:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Loader(spec.loader, quiet=name == "tensorflow")
        return spec


# The filter of `stderr_without`: a process of its own, not a thread, so that what the pipe
# holds when this process aborts (a fatal TensorFlow error, its explanation just written)
# still reaches the terminal: the filter reads on to the end of the pipe, then ends.
_FILTER = """
import re, sys
pattern = re.compile(sys.argv[1].encode())
for line in sys.stdin.buffer:
    if not pattern.search(line):
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
"""


@contextmanager
def stderr_without(pattern: re.Pattern[str] = HARMLESS_ERRORS) -> Iterator[None]:
    """Descriptor 2 through a filter process that passes lines on as they come, except
    those matching `pattern` (TensorFlow's C++ code writes to the descriptor, not to
    sys.stderr). Its own session: a Ctrl-C meant for the command does not stop it."""
    sys.stderr.flush()
    saved = os.dup(2)
    command = [sys.executable, "-S", "-c", _FILTER, pattern.pattern]
    passer = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=saved, stderr=saved, start_new_session=True
    )
    assert passer.stdin is not None  # stdin=PIPE
    os.dup2(passer.stdin.fileno(), 2)
    passer.stdin.close()  # descriptor 2 is the pipe's only writer now
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer closed: the filter reads to its end
        with suppress(subprocess.TimeoutExpired):  # a child holds it: let it be
            passer.wait(timeout=5)
        os.close(saved)
