"""The hostile-input corpus: every command fed what a careless or hostile user would give it.

Each case asserts three things: the exit code, the message (one line, no traceback, naming
what to do), and that no file outside the command's intended output changed. `hostile`
runs the real entry point in this process; `hostile_subprocess` runs it in a child with a
time limit, for inputs that could hang (FIFOs, /dev/zero).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under `root` (symlinks by target text)."""
    files: dict[str, str] = {}
    for path in sorted(Path(root).rglob("*")):
        relative = str(path.relative_to(root))
        if path.is_symlink():
            files[relative] = "link:" + os.readlink(path)
        elif path.is_file():
            files[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    """Paths added, removed or modified between two snapshots."""
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str
    changed: set[str]

    def assert_refused(self, code: int, *words: str, allowed: Iterable[str] = ()) -> None:
        """Exit `code`, a message containing every word, no traceback, no stray writes."""
        text = self.out + self.err
        assert self.code == code, f"exit {self.code}, wanted {code}:\n{text[-3000:]}"
        assert "Traceback" not in text, text[-3000:]
        for word in words:
            assert word in text, f"{word!r} not in:\n{text[-3000:]}"
        allowed = tuple(allowed)
        stray = {p for p in self.changed if not p.startswith(allowed)}
        assert not stray, f"files outside the intended output changed: {sorted(stray)}"


@pytest.fixture
def hostile(run_cli, tmp_path: Path) -> Callable[..., Outcome]:
    """`hostile(*args, watch=tmp_path)`: run `gencompile args...` in-process from `watch`
    (the working directory) and report which files under `watch` changed."""

    def run(*args: str, watch: Path | None = None) -> Outcome:
        root = Path(watch or tmp_path)
        before = snapshot(root)
        cwd = Path.cwd()
        os.chdir(root)
        try:
            code, out, err = run_cli(*[str(a) for a in args])
        finally:
            os.chdir(cwd)
        return Outcome(code, out, err, changed(before, snapshot(root)))

    return run


@pytest.fixture
def hostile_subprocess(tmp_path: Path) -> Callable[..., Outcome]:
    """`hostile_subprocess(*args, timeout=60)`: the installed command in a child process;
    a hang fails the test instead of the suite."""

    def run(*args: str, timeout: float = 60, watch: Path | None = None) -> Outcome:
        root = Path(watch or tmp_path)
        before = snapshot(root)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        try:
            done = subprocess.run(
                [sys.executable, "-m", "gencompile", *[str(a) for a in args]],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"gencompile {' '.join(map(str, args))} hung for {timeout} s")
        return Outcome(done.returncode, done.stdout, done.stderr, changed(before, snapshot(root)))

    return run


@pytest.fixture
def tools() -> SimpleNamespace:
    """The harness' functions, for tests of the harness itself."""
    return SimpleNamespace(snapshot=snapshot, changed=changed, Outcome=Outcome)


@pytest.fixture
def vae_copy(trained_vae: Path, tmp_path: Path) -> Path:
    """A private copy of the finished tiny VAE run, free to damage."""
    import shutil

    target = tmp_path / "run"
    shutil.copytree(trained_vae, target)
    return target
