"""The advice of the memory refusal names the largest part of the estimate: TensorFlow's
fixed share (only more memory helps) or the spec's largest term (what to shrink)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.compiler.lower import lower
from gencompile.compiler.resources import RUNTIME_BYTES, MemoryEstimate, check_memory
from gencompile.errors import RunError
from gencompile.spec import load_spec

DIGITS = Path(__file__).resolve().parents[2] / "specs" / "vae_digits.yaml"
MIB = 1 << 20


def refusal(monkeypatch: pytest.MonkeyPatch, limit: str) -> str:
    monkeypatch.setenv("GENCOMPILE_MEMORY", limit)
    with pytest.raises(RunError) as refused:
        check_memory(lower(load_spec(DIGITS)))
    return str(refused.value)


def test_tensorflow_alone_over_the_limit_asks_for_more_memory(monkeypatch) -> None:
    """Before: `... the data 3.1 MiB, TensorFlow 512.0 MiB; ... use less data`."""
    message = refusal(monkeypatch, "100M")
    advice = message.split("allowed by GENCOMPILE_MEMORY; ", 1)[1]
    assert advice.startswith("TensorFlow itself needs about 512.0 MiB, the largest part")
    assert advice.endswith(f"raise GENCOMPILE_MEMORY to at least {message.split()[3]} MiB")
    assert "use less data" not in message and "shrink" not in message


def test_a_limit_above_tensorflow_also_names_what_the_spec_could_shrink(monkeypatch) -> None:
    message = refusal(monkeypatch, "513M")  # TensorFlow fits; TensorFlow and the data do not
    assert "TensorFlow itself needs about 512.0 MiB, the largest part" in message
    assert "raise GENCOMPILE_MEMORY to at least" in message
    assert message.endswith(", or use less data (fewer examples, or a smaller file or image size)")


def estimate(data: int) -> MemoryEstimate:
    return MemoryEstimate(1000, MIB, MIB, data, RUNTIME_BYTES, 64, None, None)


def test_without_the_variable_it_says_how_much_memory_must_be_free() -> None:
    advice = estimate(3 * MIB).advice(100 * MIB, "available (MemAvailable)")
    assert advice.endswith("run it where at least 517.0 MiB of memory is free")
    assert "GENCOMPILE_MEMORY" not in advice


def test_data_larger_than_tensorflow_is_what_to_shrink() -> None:
    advice = estimate(2048 * MIB).advice(1024 * MIB, "allowed by GENCOMPILE_MEMORY")
    assert advice == "use less data (fewer examples, or a smaller file or image size)"


def test_workers_multiply_the_estimate_and_the_refusal_says_both_figures(monkeypatch) -> None:
    """Each local worker loads TensorFlow, the model and the data: 4 must fit, not 1."""
    monkeypatch.setenv("GENCOMPILE_MEMORY", "1200M")
    plan = lower(load_spec(DIGITS))
    one = check_memory(plan)  # one process fits
    with pytest.raises(RunError) as refused:
        check_memory(plan, workers=4)
    message = str(refused.value)
    each = f"{one.per_worker / MIB:.1f} MiB x 4 workers"
    assert message.startswith(f"vae-digits needs about 2.0 GiB ({each}) to train, each worker: ")
    assert "TensorFlow itself needs about 512.0 MiB in each worker" in message
    assert message.endswith(f"raise GENCOMPILE_MEMORY to at least 2.0 GiB ({each})")
    assert one.total == one.per_worker and "workers" not in one.summary()
