"""A trained language model run: `gencompile sample --prompt`, `evaluate`, and `reproduce`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "data.source.n_samples=600",
    "model.context_length=16",
    "model.network={type: gru, units: 32, embedding_dim: 8}",
    "model.sampling.length=24",
    "evaluation.num_samples=4",
    "evaluation.metrics=[perplexity, bits_per_char]",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gencompile.runs import train

    directory = tmp_path_factory.mktemp("lm") / "run"
    spec = ROOT / "specs" / "charlm_arithmetic.yaml"
    return train(spec, TINY, epochs=1, run_dir=directory, quiet=True).run_dir


def test_reproduce_gives_identical_weights_and_metrics(run: Path, tmp_path: Path) -> None:
    # First in this file: `evaluate` below adds a metric the original run did not compute.
    from gencompile.reproduction import reproduce

    result = reproduce(run, tmp_path / "again")
    assert result.identical, [(r.name, r.original, r.reproduced) for r in result.rows]


def test_sample_with_a_prompt_writes_text(run: Path, run_cli, tmp_path: Path) -> None:
    out = tmp_path / "continued.txt"
    code, _, stderr = run_cli(
        "sample", str(run), "-n", "3", "--prompt", "12+", "--length", "10", "-o", str(out)
    )
    assert code == 0, stderr
    blocks = out.read_text(encoding="utf-8").split("### sample ")[1:]
    assert len(blocks) == 3
    assert all(block.split("\n", 1)[1].startswith("12+") for block in blocks)


def test_a_prompt_the_vocabulary_lacks_is_refused(run: Path, run_cli, tmp_path: Path) -> None:
    out = tmp_path / "c2.txt"
    code, _, stderr = run_cli("sample", str(run), "-n", "2", "-o", str(out), "--prompt", "abc")
    assert code == 2, stderr
    assert "--prompt: the prompt has characters the model never saw: 'a', 'b', 'c';" in stderr
    assert "0-9" in stderr and not out.exists()
    code, _, stderr = run_cli("sample", str(run), "-o", str(out), "--prompt", "")
    assert code == 2 and stderr.startswith("error: --prompt: the prompt holds no token;")
    assert len(stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("name", ["folder/", "x.parquet", "x.csv", "x.npz", "x.png"])
def test_a_language_model_advises_a_txt_file(run: Path, run_cli, tmp_path: Path, name) -> None:
    """Not a table of its token windows (which it would then refuse): text."""
    out = f"{tmp_path}/{name}"
    code, _, stderr = run_cli("sample", str(run), "-n", "2", "-o", out)
    assert code == 2
    assert stderr == f"error: a language model writes text samples: use a .txt file, not {out}\n"


def test_evaluate_adds_bleu_and_the_lock_pins_the_vocabulary(run: Path, run_cli) -> None:
    code, _, stderr = run_cli("evaluate", str(run), "--metrics", "perplexity,bleu")
    assert code == 0, stderr
    record = json.loads((run / "metrics.json").read_text())
    assert {"perplexity", "bleu", "bits_per_char"} <= set(record["metrics"])
    assert 0.0 <= record["metrics"]["bleu"] <= 100.0
    lock = json.loads((run / "spec.lock.json").read_text())
    vocabulary = json.loads((run / "charlm_arithmetic" / "vocabulary.json").read_text())
    assert vocabulary["tokens"] == ["<unk>", "\n", "+", *"0123456789", "="]
    assert "charlm_arithmetic/vocabulary.json" in lock["files"]
    assert lock["resolved_spec"]["model"]["tokenizer"] == {"type": "char"}
