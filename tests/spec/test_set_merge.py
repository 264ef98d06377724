"""A mapping given to `--set` merges into the block the spec wrote, by the rules of
`extends:`: the spec's other fields stay, and a mapping naming another `type:` keeps only
the fields the new variant takes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gencompile.errors import SpecError
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """digits.yaml: adam at 1e-3 with clipnorm 5, a KL warm-up of 5 epochs; moons.yaml: a
    mixture prior of 4 components."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "specs" / "vae_digits.yaml", tmp_path / "digits.yaml")
    shutil.copy(ROOT / "specs" / "vae_moons.yaml", tmp_path / "moons.yaml")
    return tmp_path


def test_a_mapping_naming_another_optimizer_keeps_the_specs_rate_and_clipping(
    work: Path,
) -> None:
    optimizer = load_spec("digits.yaml", ["training.optimizer={type: sgd}"]).spec.training.optimizer
    assert (optimizer.type, optimizer.learning_rate, optimizer.clipnorm) == ("sgd", 1e-3, 5.0)
    # the same as a child spec and as the leaf --set
    (work / "child.yaml").write_text("extends: digits.yaml\ntraining:\n  optimizer: {type: sgd}\n")
    assert load_spec("child.yaml").spec.training.optimizer == optimizer
    leaf = load_spec("digits.yaml", ["training.optimizer.type=sgd"]).spec.training.optimizer
    assert leaf == optimizer


def test_a_mapping_of_some_fields_keeps_the_others(work: Path) -> None:
    kl = load_spec("digits.yaml", ["model.losses.kl={free_bits: 0.5}"]).spec.model.losses.kl
    assert (kl.weight, kl.warmup_epochs, kl.free_bits) == (1.0, 5, 0.5)


def test_a_mapping_naming_another_variant_drops_the_fields_it_does_not_take(
    work: Path,
) -> None:
    loaded = load_spec("moons.yaml", ["model.prior={type: normal}"])
    assert loaded.spec.model.prior.model_dump(exclude_defaults=True) == {"type": "normal"}
    assert ("model", "prior", "components") not in loaded.marks.marks
    (work / "child.yaml").write_text("extends: moons.yaml\nmodel:\n  prior: {type: normal}\n")
    assert load_spec("child.yaml").spec.model.prior == loaded.spec.model.prior


def test_an_earlier_sets_field_stays_when_a_mapping_switches_the_variant(work: Path) -> None:
    """The user wrote both: a field the new variant does not take is reported, not lost."""
    with pytest.raises(SpecError) as info:
        load_spec(
            "digits.yaml", ["training.optimizer.beta_1=0.8", "training.optimizer={type: sgd}"]
        )
    [problem] = info.value.problems
    assert (problem.file, problem.path) == ("--set", "training.optimizer.beta_1")


def test_what_the_mapping_gives_is_located_at_set_and_the_rest_in_the_spec(work: Path) -> None:
    loaded = load_spec("digits.yaml", ["training.optimizer={type: sgd, momentum: 0.9}"])
    marks = loaded.marks
    assert marks.locate(("training", "optimizer", "momentum")).file == "--set"
    assert marks.locate(("training", "optimizer", "type")).file == "--set"
    assert marks.locate(("training", "optimizer", "clipnorm")).file == "digits.yaml"
    with pytest.raises(SpecError) as info:
        load_spec("digits.yaml", ["model.losses.kl={warmup_epochs: -1}"])
    [problem] = info.value.problems
    assert (problem.file, problem.path) == ("--set", "model.losses.kl.warmup_epochs")
