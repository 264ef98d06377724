"""A mapping naming another variant (`type:`, or `family:` for the model) than the one
below it keeps only the fields below it that the new variant takes, through `extends:` and
through `--set x.type=...`: the new variant decides its keys, none of the old variant's
other fields leak into it, and the ones they share (a learning rate) are not lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from gencompile.errors import SpecError
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding moons.yaml (a mixture prior with 4 components) and digits.yaml."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "specs" / "vae_moons.yaml", tmp_path / "moons.yaml")
    shutil.copy(ROOT / "specs" / "vae_digits.yaml", tmp_path / "digits.yaml")
    return tmp_path


def problems(spec: str, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(spec, overrides or [])
    return [str(problem) for problem in info.value.problems]


def test_a_child_spec_switches_its_bases_prior(work: Path) -> None:
    assert load_spec("moons.yaml").spec.model.prior.type == "mixture_of_gaussians"
    (work / "child.yaml").write_text(
        "extends: moons.yaml\nname: child\nmodel:\n  prior: {type: normal}\n"
    )
    loaded = load_spec("child.yaml")
    assert loaded.spec.model.prior.model_dump(exclude_defaults=True) == {"type": "normal"}
    # the base's components no longer locate anything
    assert ("model", "prior", "components") not in loaded.marks.marks
    assert loaded.marks.locate(("model", "prior", "type")).file == "child.yaml"


def test_a_field_a_middle_spec_dropped_stays_dropped_when_its_child_switches_back(
    work: Path,
) -> None:
    """moons (mixture, 4 components) -> mid (normal) -> child (mixture again): the child's
    mixture starts from mid's normal prior, as the same switches by --set do."""
    (work / "mid.yaml").write_text("extends: moons.yaml\nmodel:\n  prior: {type: normal}\n")
    (work / "child.yaml").write_text(
        "extends: mid.yaml\nmodel:\n  prior: {type: mixture_of_gaussians}\n"
    )
    loaded = load_spec("child.yaml")
    by_set = load_spec(
        "moons.yaml", ["model.prior.type=normal", "model.prior.type=mixture_of_gaussians"]
    )
    assert loaded.spec.model.prior.components == by_set.spec.model.prior.components == 10
    assert loaded.spec.model.prior == by_set.spec.model.prior
    assert ("model", "prior", "components") not in loaded.marks.marks
    # a field the middle level does not drop is still inherited through it
    (work / "mid.yaml").write_text("extends: moons.yaml\nmodel:\n  prior: {components: 6}\n")
    assert load_spec("child.yaml").spec.model.prior.components == 6


def test_a_child_spec_switches_its_bases_data_source(work: Path) -> None:
    rows = np.random.default_rng(0).random((100, 4)).astype("float32")
    np.save(work / "x.npy", rows)
    (work / "child.yaml").write_text(
        "extends: digits.yaml\nname: child\ndata:\n  source: {type: npy, path: x.npy}\n"
        "evaluation:\n  metrics: [elbo]\n"
    )
    source = load_spec("child.yaml").spec.data.source
    assert (source.type, source.path) == ("npy", "x.npy")
    assert not hasattr(source, "name")


def test_a_child_spec_switches_the_model_family(work: Path) -> None:
    (work / "gan.yaml").write_text(
        "extends: digits.yaml\nname: child-gan\nmodel:\n  family: gan\n  latent_dim: 8\n"
        "  generator: {mlp: [64]}\n  discriminator: {mlp: [64]}\n"
        "  loss: {type: non_saturating}\nevaluation:\n  metrics: [fd_digits]\n"
        "sweep: null\n"  # the base sweeps the VAE's elbo, which a GAN does not report
    )
    spec = load_spec("gan.yaml").spec
    assert spec.model.family == "gan"
    assert spec.data.batch_size == 64 and spec.training.epochs == 60  # the base's blocks


def test_a_partial_override_of_the_same_variant_still_merges(work: Path) -> None:
    (work / "child.yaml").write_text(
        "extends: moons.yaml\ndata:\n  source: {type: builtin, noise: 0.1}\n"
    )
    source = load_spec("child.yaml").spec.data.source
    assert (source.name, source.n_samples, source.noise) == ("moons", 4000, 0.1)


def test_set_type_drops_the_old_variants_fields(work: Path) -> None:
    prior = load_spec("moons.yaml", ["model.prior.type=normal"]).spec.model.prior
    assert prior.model_dump(exclude_defaults=True) == {"type": "normal"}


def test_set_overrides_apply_in_order_around_a_type_switch(work: Path) -> None:
    # a field set after the switch joins the new variant ...
    prior = load_spec(
        "digits.yaml",
        ["model.prior.type=mixture_of_gaussians", "model.prior.components=3"],
    ).spec.model.prior
    assert (prior.type, prior.components) == ("mixture_of_gaussians", 3)
    # ... and one an earlier --set gave survives it: only the files' fields are dropped
    prior = load_spec(
        "digits.yaml",
        ["model.prior.components=5", "model.prior.type=mixture_of_gaussians"],
    ).spec.model.prior
    assert (prior.type, prior.components) == ("mixture_of_gaussians", 5)


def test_an_unknown_key_of_a_fieldless_variant_says_it_takes_none(work: Path) -> None:
    found = problems("moons.yaml", ["model.prior.type=normal", "model.prior.components=4"])
    assert found == [
        "--set: model.prior.components: unknown key 'components' (type: normal takes no other keys)"
    ]
    (work / "child.yaml").write_text(
        "extends: moons.yaml\nmodel:\n  prior: {type: normal, components: 4}\n"
    )
    (found,) = problems("child.yaml")
    assert found.startswith("child.yaml:3:")  # in the child, which wrote it
    assert found.endswith("unknown key 'components' (type: normal takes no other keys)")
    assert "expected one of: )" not in found


def test_a_switched_variant_keeps_the_fields_it_shares_with_the_old_one(work: Path) -> None:
    """adam -> sgd keeps the base's learning_rate and clipnorm (both optimizers take them)
    and drops nothing else by surprise: a silently changed learning rate would change the
    run, so only the fields the new variant cannot take are left behind."""
    (work / "child.yaml").write_text(
        "extends: digits.yaml\ntraining:\n  optimizer: {type: sgd, momentum: 0.9}\n"
    )
    child = load_spec("child.yaml").spec.training.optimizer
    assert (child.type, child.learning_rate, child.clipnorm, child.momentum) == (
        "sgd", 1e-3, 5.0, 0.9,
    )  # fmt: skip
    by_set = load_spec("digits.yaml", ["training.optimizer.type=rmsprop"]).spec.training.optimizer
    assert (by_set.type, by_set.learning_rate, by_set.clipnorm) == ("rmsprop", 1e-3, 5.0)
    adamw = load_spec("moons.yaml", ["training.optimizer.type=adamw"]).spec.training.optimizer
    assert (adamw.type, adamw.learning_rate) == ("adamw", 2e-3)


def test_a_sweep_trial_over_a_type_keeps_the_shared_fields(work: Path) -> None:
    from gencompile.spec import check_trial

    data = {"training": {"optimizer": {"type": "adam", "learning_rate": 0.5, "beta_1": 0.8}}}
    data = {**load_spec("moons.yaml").spec.model_dump(mode="json", exclude_unset=True), **data}
    check_trial(data, ("training", "optimizer", "type"), "sgd")
    assert data["training"]["optimizer"] == {"type": "sgd", "learning_rate": 0.5}


def test_the_reference_and_editor_schema_say_a_switch_keeps_the_fields_it_takes() -> None:
    """docs/spec.md's `extends` row and the editor schema's description say what loading
    does (a new optimizer keeps the base's learning_rate), as README does."""
    from gencompile.spec.reference import editor_schema

    described = editor_schema()["properties"]["extends"]["description"]
    assert "keeps only the base's fields the new variant takes" in described
    assert "replaces the base's" not in described
    row = next(
        line
        for line in (ROOT / "docs" / "spec.md").read_text().splitlines()
        if line.startswith("| `extends` |")
    )
    assert described in row
