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

TensorFlow's C++ code also logs while a model runs, straight to descriptor 2. One such line
is known to be harmless and is dropped: grappler's "remapper failed: ... Mutation::Apply
error: fanout ... exist for missing node ..." (`KNOWN_HARMLESS`), printed when the first
training step of a model with spectral normalization is optimized; the step runs,
unoptimized by that one pass. After the import, `filter_known_harmless()` points
descriptor 2 at a small filter process (a pseudo-terminal when stderr is a terminal, so
progress displays still see one; a pipe otherwise) that copies every other byte to the
real stderr as it comes. The filter ignores Ctrl-C and outlives a crash of this process,
so nothing written before either is lost; at exit, descriptor 2 is given back and the
filter drained. It is not started under pytest (whose capture owns descriptor 2) or with
GENCOMPILE_TF_LOG_FILTER=0.
"""

from __future__ import annotations

import gc
import importlib.abc
import importlib.machinery
import os
import re
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

# Known-harmless C++ error lines TensorFlow prints while a model runs: matched narrowly.
KNOWN_HARMLESS = rb"\] remapper failed: INVALID_ARGUMENT: Mutation::Apply error: fanout '"
# The filter process: descriptor 0 in, 1 out (the real stderr). Whole lines that match are
# dropped; a partial line is held only while it may still become one (a C++ log line's
# "E0000 ... file.cc:967] remapper failed: " start), and for at most 0.2 s.
_FILTER = r"""
import os, re, select, signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
harmless = re.compile(HARMLESS)
START = b"remapper failed: "
def pending(part):
    if not re.fullmatch(rb"E[0-9]{0,4}", part[:5]) or len(part) > 4096:
        return False
    head, found, rest = part.partition(b"] ")
    return START.startswith(rest[: len(START)]) if found else len(head) < 256
def write(data):
    while data:
        data = data[os.write(1, data):]
held = b""
while True:
    if held and not select.select([0], [], [], 0.2)[0]:
        write(held)  # it stayed unfinished: show it as it is
        held = b""
        continue
    try:
        chunk = os.read(0, 65536)
    except OSError:  # a pseudo-terminal whose last writer closed
        chunk = b""
    if not chunk:
        write(held)
        break
    lines = (held + chunk).split(b"\n")
    held = lines.pop()
    write(b"".join(line + b"\n" for line in lines if not harmless.search(line)))
    if held and not pending(held):
        write(held)
        held = b""
""".replace("HARMLESS", repr(KNOWN_HARMLESS))
_filter: Any = None  # (the filter process, the real stderr's descriptor) once started


def filter_known_harmless() -> None:
    """Route descriptor 2 through the filter process that drops `KNOWN_HARMLESS` lines
    (once a process; not under pytest, nor with GENCOMPILE_TF_LOG_FILTER=0)."""
    global _filter
    if _filter is not None or os.environ.get("GENCOMPILE_TF_LOG_FILTER") == "0":
        return
    if "pytest" in sys.modules or "_pytest" in sys.modules:
        return
    import atexit
    import subprocess

    try:
        real = os.dup(2)
        reading, writing = _filter_channel(real)
        process = subprocess.Popen(
            [sys.executable, "-S", "-c", _FILTER],
            stdin=reading, stdout=real, stderr=subprocess.DEVNULL, close_fds=True,
        )  # fmt: skip
    except (OSError, ValueError):
        return  # no filter: the lines show, as before
    os.close(reading)
    sys.stderr.flush()
    os.dup2(writing, 2)
    os.close(writing)
    _filter = (process, real)
    atexit.register(_drain_filter)


def _filter_channel(real: int) -> tuple[int, int]:
    """(read end, write end): a pseudo-terminal like `real` when it is a terminal (sizes
    and modes copied, output bytes passed as they are), else a pipe."""
    if not os.isatty(real):
        return os.pipe()
    import fcntl
    import termios

    leader, follower = os.openpty()
    modes = termios.tcgetattr(real)
    modes[1] &= ~termios.OPOST  # the real terminal does the output processing
    termios.tcsetattr(follower, termios.TCSANOW, modes)
    size = fcntl.ioctl(real, termios.TIOCGWINSZ, b"\0" * 8)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, size)
    return leader, follower


def _drain_filter() -> None:
    """At exit: descriptor 2 is the real stderr again, and the filter writes what it holds."""
    import subprocess

    global _filter
    if _filter is None:
        return
    process, real = _filter
    _filter = None
    with suppress(OSError, ValueError):
        sys.stderr.flush()
    os.dup2(real, 2)
    os.close(real)
    with suppress(subprocess.TimeoutExpired):  # children writing on keep it open
        process.wait(timeout=5)


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
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
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
        filter_known_harmless()  # imported: the running model's known-harmless lines


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
