"""Fixtures shared across test folders: the CLI entry point, and a training killed mid-epoch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# Console output is read by the tests: wide enough that rich never wraps a temporary path
# (pytest-xdist's are longer: .../popen-gw0/...).
os.environ["COLUMNS"] = "250"

# Tests of Ctrl-C need it delivered. A suite started in the background by a shell without
# job control (`cmd &`, nohup) inherits SIGINT ignored, and so would every child it starts
# (an ignored signal stays ignored across exec): gencompile rightly leaves it so, as the
# user asked. A handler set here is reset to the default in children, as in a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Trains in a child process and SIGKILLs it after batch 8 of epoch 3 (0-based epoch 2), or
# the first call into the train function past it.
KILL_MID_EPOCH = """
import os, signal, sys
import keras
from gencompile.runs import train

class KillMidEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 2 and batch >= 7:  # (several steps per call: the first call past it)
            os.kill(os.getpid(), signal.SIGKILL)

fit = keras.Model.fit

def fit_and_die(self, *args, callbacks=(), **kwargs):
    return fit(self, *args, callbacks=[*callbacks, KillMidEpoch()], **kwargs)

keras.Model.fit = fit_and_die
train(sys.argv[1], sys.argv[4:], epochs=int(sys.argv[3]), run_dir=sys.argv[2], quiet=True)
"""


@pytest.fixture(scope="session", autouse=True)
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of feature extractors (the digits classifier) for the whole session, kept
    out of the user's own cache folder.

    Under pytest-xdist the workers share it (the session's temporary root): the first to
    need the classifier trains it, the others load it. Entries are written atomically, so a
    worker that looks while another trains finds none and trains too (the same weights).
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.getbasetemp().parent / "gencompile-cache"
        folder.mkdir(exist_ok=True)
    else:
        folder = tmp_path_factory.mktemp("gencompile-cache")
    os.environ["GENCOMPILE_CACHE"] = str(folder)
    return folder


@pytest.fixture
def killed_run() -> Callable[[Path, Path, list[str], int], Path]:
    """`killed_run(spec, run_dir, overrides, epochs)`: train until SIGKILL in epoch 3."""

    def kill(spec: Path, run_dir: Path, overrides: list[str], epochs: int) -> Path:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                KILL_MID_EPOCH,
                str(spec),
                str(run_dir),
                str(epochs),
                *overrides,
            ],
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
        return run_dir

    return kill


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """`run_cli(*args)` -> (exit code, stdout, stderr) of `gencompile args...`."""
    from gencompile.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["gencompile", *args])
        try:
            main()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


# Example mixtures fitted by EM: one epoch is one pass over every batch, so they refuse
# training.steps_per_epoch (a subset per iteration would be another algorithm).
EM_SPECS = frozenset({"gmm_blobs", "bgmm_blobs", "gmm_digits", "gmm_moons"})


def quick(spec: Path | str, overrides: list[str]) -> list[str]:
    """`overrides` for a quick run of `spec`, without steps_per_epoch for an EM mixture."""
    if Path(spec).stem not in EM_SPECS:
        return list(overrides)
    return [o for o in overrides if not o.startswith("training.steps_per_epoch=")]


# Example specs whose text file is given on the command line (`--set data.source.path=...`):
# tests give them a small corpus written to a temporary folder.
NEEDS_TEXT_FILE = frozenset({"charlm_text.yaml", "charlm_finetune.yaml"})
CORPUS = (
    "It is a truth universally acknowledged, that a single man in possession of a good\n"
    "fortune, must be in want of a wife. However little known the feelings or views of\n"
    "such a man may be on his first entering a neighbourhood, this truth is so well\n"
    "fixed in the minds of the surrounding families, that he is considered the rightful\n"
    "property of some one or other of their daughters.\n"
)


def write_corpus(directory: Path) -> Path:
    path = directory / "corpus.txt"
    path.write_text(CORPUS * 12, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def text_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small English text file (about 4,500 characters)."""
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def example_overrides(text_corpus: Path) -> Callable[[Path], list[str]]:
    """`example_overrides(spec)`: the `--set` overrides an example spec needs in tests."""

    def overrides(spec: Path) -> list[str]:
        return [f"data.source.path={text_corpus}"] if Path(spec).name in NEEDS_TEXT_FILE else []

    return overrides


# A tiny digits VAE that trains in seconds: the spec of every test that needs a real run.
TINY_VAE = """\
spec_version: 1
name: tiny-vae
seed: 3
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 256
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  likelihood: {type: bernoulli}
training:
  epochs: 1
  checkpoint: {every_epochs: 1, keep: 2}
evaluation:
  metrics: [elbo, iwae_nll]
  importance_samples: 4
output:
  samples: {count: 16, format: png}
"""


# The model of the sweep tests: each adds its own `training:` and `sweep:` sections.
SWEEP_VAE = """\
spec_version: 1
name: tiny-vae
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [8]}
  decoder: {mlp: [8]}
  likelihood: {type: bernoulli}
evaluation:
  metrics: [elbo]
"""


@pytest.fixture(scope="session")
def tiny_vae_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("specs") / "tiny_vae.yaml"
    path.write_text(TINY_VAE)
    return path


@pytest.fixture(scope="session")
def trained_vae(tmp_path_factory: pytest.TempPathFactory, tiny_vae_spec: Path) -> Path:
    """A finished one-epoch run of TINY_VAE, trained once a session (a worker) for every
    test folder that reads one (shared, read-only: copy before editing)."""
    from gencompile.runs import train

    run_dir = tmp_path_factory.mktemp("runs") / "vae"
    return train(tiny_vae_spec, run_dir=run_dir, quiet=True).run_dir


@pytest.fixture
def terminal_progress(monkeypatch: pytest.MonkeyPatch):
    """Progress bars (`gencompile.progress`) drawn as on a terminal, into the returned buffer."""
    import io

    from rich.console import Console

    from gencompile import progress

    buffer = io.StringIO()
    terminal = Console(file=buffer, force_terminal=True, width=120)
    monkeypatch.setattr(progress, "_CONSOLE", [terminal])
    return buffer
