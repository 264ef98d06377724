"""benchmarks/harness.py: its pure helpers, without training anything."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load() -> ModuleType:
    name = "benchmark_harness"  # not on sys.path: benchmarks/ is no package
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / "harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


harness = _load()


def test_median_spread_listed_ratios() -> None:
    assert harness.median(iter([3.0, 1.0, 2.0])) == 2.0
    assert harness.median([1, 2, 3, 4]) == 2.5
    assert harness.spread([1.5]) == "1.500"
    assert harness.spread([1.0, 2.0, 3.0], digits=2) == "2.00 ± 1.00"
    assert harness.listed([0.5, 1.25], digits=2) == "0.50, 1.25"
    assert harness.ratios([2.0, 9.0], [4.0, 3.0]) == [0.5, 3.0]
    with pytest.raises(ValueError):
        harness.ratios([1.0], [1.0, 2.0])


def test_render_table_aligns_and_checks_widths() -> None:
    table = harness.render_table([["generated", "1.0"], ["reference", "2.0"]], ["model", "x"])
    assert table.splitlines() == [
        "| model | x |",
        "| --- | ---: |",
        "| generated | 1.0 |",
        "| reference | 2.0 |",
    ]
    assert harness.render_table([[1, 2]], ["a", "b"], align="rl").splitlines()[1] == (
        "| ---: | --- |"
    )
    with pytest.raises(ValueError, match="has 1 cells, not 2"):
        harness.render_table([["only"]], ["a", "b"])
    with pytest.raises(ValueError, match="alignment"):
        harness.render_table([], ["a", "b"], align="l")


def test_write_result_makes_folders_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "deep" / "report.md"
    harness.write_result(path, "# report\n")
    assert path.read_text(encoding="utf-8") == "# report\n"
    out = capsys.readouterr().out
    assert "# report" in out and out.rstrip().endswith(f"wrote {path}")
    harness.write_result(path, "# second\n", echo=False)
    assert capsys.readouterr().out == f"wrote {path}\n"


def test_machine_lines_and_stamp() -> None:
    assert re.fullmatch(r"\d+\.\d+, \d+\.\d+, \d+\.\d+|n/a", harness.load_average())
    assert re.fullmatch(r"Python 3\.\d+\.\d+\S*, \d+ CPU\(s\)", harness.machine_line(False))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", harness.utc_stamp())
    assert harness.platform_line().endswith(f", {sys.platform}")


def test_importing_harness_does_not_import_tensorflow() -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); import harness; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


class FakeContender:
    def __init__(self, name: str, log: list[tuple[str, int, int]]) -> None:
        self.name, self.log = name, log

    def fit(self, start: int, stop: int) -> None:
        self.log.append((self.name, start, stop))


def test_train_interleaved_alternates_chunks_and_flips() -> None:
    log: list[tuple[str, int, int]] = []
    pair = [FakeContender("g", log), FakeContender("r", log)]
    harness.train_interleaved(pair, epochs=5, chunk=2, flip=1)
    assert log == [("r", 0, 2), ("g", 0, 2), ("g", 2, 4), ("r", 2, 4), ("r", 4, 5), ("g", 4, 5)]
    log.clear()
    harness.train_interleaved(pair, epochs=3, chunk=0, flip=0)  # 0: one fit each
    assert log == [("g", 0, 3), ("r", 0, 3)]


def test_paired_blocks_rotates_and_counts_steps() -> None:
    calls: list[str] = []

    def runner(name: str) -> Callable[[], dict[str, float]]:
        return lambda: calls.append(name) or {"loss": 0.0}

    runners = {"a": runner("a"), "b": runner("b"), "c": runner("c")}
    wall, cpu = harness.paired_blocks(runners, blocks=3, steps=2, warmup=1)
    assert calls[:3] == ["a", "b", "c"]  # warm-up
    firsts = calls[3::2]
    assert firsts == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert {k: len(v) for k, v in wall.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(t >= 0 for times in (*wall.values(), *cpu.values()) for t in times)
    with pytest.raises(KeyError):
        harness.paired_blocks({"a": lambda: {"d_loss": 1.0}}, blocks=1, steps=1, warmup=0)


def test_forget_script_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", [str(BENCHMARKS), "/elsewhere", str(BENCHMARKS) + "/"])
    harness.forget_script_folder()
    assert sys.path == ["/elsewhere"]


def test_gencompile_train_and_peak_rss(tmp_path: Path) -> None:
    command = harness.gencompile_train(Path("s.yaml"), tmp_path, "a=1", "b=2")
    assert command[1:5] == ["-m", "gencompile", "train", "s.yaml"]
    assert command[-5:] == ["--quiet", "--set", "a=1", "--set", "b=2"]
    grab = "x = bytearray(200 * 2**20); x[::4096] = b'1' * len(x[::4096])"
    peak, seconds = harness.peak_rss([sys.executable, "-c", grab])
    assert 200 * 2**20 < peak < 400 * 2**20
    assert seconds > 0


def test_check_matches_names_every_difference() -> None:
    harness.check_matches({"lr": 1e-3, "extra": 1}, {"lr": 1e-3}, "VAE")  # extras are fine
    with pytest.raises(SystemExit) as stop:
        expected = {"lr": 1e-3, "batch": 64, "seed": 1}
        harness.check_matches({"lr": 2e-3, "batch": 64}, expected, "VAE")
    assert str(stop.value) == (
        "the spec no longer matches the hand-written VAE (found, expected): "
        "{'lr': (0.002, 0.001), 'seed': (None, 1)}"
    )


def test_byte_compile_package_leaves_bytecode_for_every_module() -> None:
    line = harness.byte_compile_package()
    assert "compileall" in line and "PYTHONDONTWRITEBYTECODE" in line
    for module in ("cli.py", "runs.py", "runtime/training.py", "spec/base.py"):
        source = harness.PACKAGE / module
        assert Path(importlib.util.cache_from_source(str(source))).is_file(), module


def test_paired_blocks_divides_by_the_steps_each_call_runs() -> None:
    calls: list[str] = []

    def runner(name: str, per_call: int) -> object:
        return harness.StepRunner(lambda: calls.append(name) or {"loss": 0.0}, per_call)

    runners = {"one": runner("one", 1), "four": runner("four", 4)}
    wall, _ = harness.paired_blocks(runners, blocks=2, steps=8, warmup=4)
    # 8 steps a block: 8 calls of one step, 2 calls of four; the warm-up likewise 4 and 1
    assert calls.count("one") == 4 + 2 * 8 and calls.count("four") == 1 + 2 * 2
    assert {k: len(v) for k, v in wall.items()} == {"one": 2, "four": 2}


def test_step_runner_counts_keras_steps_per_execution() -> None:
    """A model compiled with steps_per_execution=4 runs 4 optimizer steps a call; the paired
    check must time it per step, not per call."""
    import keras
    import numpy as np
    import tensorflow as tf

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=4)
    pairs = tf.data.Dataset.from_tensor_slices((np.ones((8, 2)), np.ones((8, 1)))).batch(2)
    run = harness.step_runner(model, type("Data", (), {"train": pairs})())
    assert run.steps_per_call == 4
    wall, cpu = harness.paired_blocks({"m": run}, blocks=1, steps=8, warmup=0)
    assert int(model.optimizer.iterations) == 8  # 2 calls of 4 steps
    assert len(wall["m"]) == len(cpu["m"]) == 1
