"""The `sweep:` block and `--grid` values are checked against the fields they set, located,
before any trial runs; planning a sweep picks its metric, direction and pruning. No
TensorFlow here: all of it is spec work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gencompile.compiler.lower import lower
from gencompile.errors import SpecError
from gencompile.spec import load_spec, load_spec_text
from gencompile.sweep import metric_direction, plan_sweep

ROOT = Path(__file__).resolve().parents[1]

BASE = """\
spec_version: 1
name: tiny-vae
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  likelihood: {type: bernoulli}
evaluation:
  metrics: [elbo, iwae_nll]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "s.yaml")
    return [str(problem) for problem in info.value.problems]


def test_a_sound_block_validates_and_stays_out_of_the_lock() -> None:
    text = BASE + (
        "sweep:\n"
        "  metric: iwae_nll\n"
        "  parameters:\n"
        "    model.latent_dim: {type: int, low: 2, high: 16, step: 2}\n"
        "    training.optimizer.learning_rate: {type: log_uniform, low: 1.0e-4, high: 1.0e-2}\n"
        "    model.encoder.mlp: {type: choice, values: [[16], [32, 16]]}\n"
        "    model.losses.kl.weight: {type: uniform, low: 0.5, high: 2.0}\n"
    )
    loaded = load_spec_text(text)
    assert loaded.spec.sweep is not None
    assert list(loaded.spec.sweep.parameters) == [
        "model.latent_dim",
        "training.optimizer.learning_rate",
        "model.encoder.mlp",
        "model.losses.kl.weight",
    ]
    resolved = lower(loaded).resolved_spec
    assert "sweep" not in resolved  # a trial's lock reads as any run's
    assert resolved == lower(load_spec_text(BASE)).resolved_spec


def test_a_path_the_spec_has_no_field_for_is_located_with_a_hint() -> None:
    found = problems(
        BASE + "sweep:\n  parameters:\n    model.latnt_dim: {type: int, low: 2, high: 8}\n"
    )
    assert found == [
        "s.yaml:16:5: sweep.parameters.model.latnt_dim: model.latnt_dim would be refused for "
        "the value 2: unknown key 'latnt_dim' (did you mean 'latent_dim'?)"
    ]


def test_a_range_the_field_refuses_names_the_value_and_the_line() -> None:
    text = BASE + (
        "sweep:\n"
        "  parameters:\n"
        "    model.latent_dim: {type: int, low: -2, high: 8}\n"
        "    model.encoder.activation: {type: choice, values: [relu, reluu]}\n"
        "    training.epochs: {type: uniform, low: 1, high: 4}\n"
    )
    found = problems(text)
    assert found[0] == (
        "s.yaml:16:5: sweep.parameters.model.latent_dim: model.latent_dim would be refused "
        "for the value -2: must be > 0 (got -2) (choose values the field accepts)"
    )
    assert found[1].startswith("s.yaml:17:5: sweep.parameters.model.encoder.activation: ")
    assert 'the value "reluu"' in found[1] and "did you mean 'relu'?" in found[1]
    # a float range over an integer field: refused once, not once per value tried
    assert found[2:] == [
        "s.yaml:18:5: sweep.parameters.training.epochs: training.epochs would be refused for "
        "the value 1.0: must be an integer (got 1.0) (choose values the field accepts)"
    ]


@pytest.mark.parametrize(
    ("parameter", "expected"),
    [
        ("{type: uniform, low: 3, high: 1}", "17:10: sweep.parameters.x.y: low must be below"),
        ("{type: log_uniform, low: 0, high: 1}", "17:35: sweep.parameters.x.y.low: must be > 0.0"),
        ("{type: int, low: 0, high: 8, log: true}", "log: true needs low >= 1"),
        ("{type: choice, values: []}", "at least 1 item"),
        ("{type: normal, low: 0, high: 1}", "unknown type 'normal'"),
    ],
)
def test_a_malformed_range_is_located(parameter: str, expected: str) -> None:
    found = problems(BASE + f"sweep:\n  trials: 4\n  parameters:\n    x.y: {parameter}\n")
    assert len(found) == 1 and expected in found[0], found


def write_spec(tmp_path: Path, text: str = BASE) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return path


def test_grid_values_are_checked_and_located_at_the_option(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    with pytest.raises(SpecError) as info:
        plan_sweep(spec, ["model.latent_dim=2,0", "model.latnt=1"], sweeps_dir=tmp_path)
    found = [str(problem) for problem in info.value.problems]
    assert (
        "--grid: model.latent_dim: model.latent_dim would be refused for the value 0: "
        "must be > 0 (got 0) (choose values the field accepts)"
    ) in found
    assert any(
        line.startswith("--grid: model.latnt: ") and "unknown key 'latnt'" in line for line in found
    )


CONV = """\
spec_version: 1
name: conv
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: vae
  latent_dim: 2
  encoder:
    layers:
      - {type: conv2d, filters: 4, kernel_size: 3, strides: 2, padding: valid}
      - {type: flatten}
  decoder: {mlp: [8]}
  likelihood: {type: bernoulli}
sweep:
  parameters:
    model.encoder.layers[0].kernel_size: {type: int, low: 3, high: 12}
"""


def test_what_only_compiling_finds_is_found_before_any_trial(tmp_path: Path) -> None:
    """A kernel wider than the 8x8 digits passes the field's own check, not the compiler's."""
    spec = write_spec(tmp_path, CONV)
    with pytest.raises(SpecError) as info:
        plan_sweep(spec, search="optuna", sweeps_dir=tmp_path)
    assert [str(p) for p in info.value.problems] == [
        f"{spec}:17:5: sweep.parameters.model.encoder.layers[0].kernel_size: "
        "model.encoder.layers[0]: with model.encoder.layers[0].kernel_size=12: kernel 12 is "
        "larger than the input's size 8 (padding valid)"
    ]
    with pytest.raises(SpecError) as info:
        plan_sweep(spec, ["model.encoder.layers[0].kernel_size=3,20"], sweeps_dir=tmp_path)
    assert [str(p) for p in info.value.problems] == [
        "--grid: model.encoder.layers[0]: with model.encoder.layers[0].kernel_size=20: kernel "
        "20 is larger than the input's size 8 (padding valid)"
    ]


def test_a_grid_plan_has_every_combination_and_its_metric(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    sweep = plan_sweep(
        spec,
        ["model.latent_dim=2,3", "model.encoder.mlp=[8],[16, 8]"],
        epochs=2,
        sweeps_dir=tmp_path / "sweeps",
    )
    assert sweep.kind == "grid"
    assert sweep.grid == {"model.latent_dim": [2, 3], "model.encoder.mlp": [[8], [16, 8]]}
    assert sweep.overrides == ("training.epochs=2",)
    assert (sweep.metric, sweep.direction) == ("elbo", "maximize")  # the spec's first metric
    assert sweep.folder == tmp_path / "sweeps" / "tiny-vae"
    assert sweep.storage == f"sqlite:///{(tmp_path / 'sweeps/tiny-vae/optuna.db').resolve()}"
    assert sweep.pruning_off == "pruning is off: a grid runs every combination to the end"


def test_a_search_needs_a_sweep_block_and_says_how_to_write_one(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"has none .*add sweep: ") as info:
        plan_sweep(write_spec(tmp_path), search="optuna")
    assert info.value.exit_code == 2


def test_pruning_is_on_only_for_a_per_epoch_metric(tmp_path: Path) -> None:
    text = BASE + "sweep:\n  parameters:\n    model.latent_dim: {type: int, low: 2, high: 8}\n"
    spec = write_spec(tmp_path, text)
    final = plan_sweep(spec, metric="iwae_nll", sweeps_dir=tmp_path)
    assert (final.direction, final.trials) == ("minimize", 20)
    assert final.pruning_off is not None and "computed once, after training" in final.pruning_off
    per_epoch = plan_sweep(spec, metric="val_loss", sweeps_dir=tmp_path)
    assert per_epoch.pruning_off is None and per_epoch.direction == "minimize"
    # `auto` validation may skip epochs: each trial validates every epoch, and says so
    assert per_epoch.overrides == ("training.validation_every_epochs=1",)
    assert plan_sweep(spec, metric="val_loss", pruning=False, sweeps_dir=tmp_path).pruning_off


def test_a_metric_is_checked_before_any_trial(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, BASE + "sweep:\n  parameters:\n    seed: {type: int, low: 1, high: 9}\n"
    )
    with pytest.raises(SpecError, match=r"do not produce 'iwae_nl'.*did you mean 'iwae_nll'"):
        plan_sweep(spec, metric="iwae_nl")
    without_split = (
        spec.read_text()
        .replace("  preprocessing:", "  validation_split: 0.0\n  preprocessing:")
        .replace("metrics: [elbo, iwae_nll]", "metrics: []")
    )
    spec.write_text(without_split)
    with pytest.raises(SpecError, match="a val_\\* metric needs held-out data"):
        plan_sweep(spec, metric="val_loss")


def test_only_a_metric_this_spec_produces_is_accepted(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, BASE + "sweep:\n  parameters:\n    seed: {type: int, low: 1, high: 9}\n"
    )
    # a typo of a validation log: named, with the log it means, not asked for a direction
    with pytest.raises(SpecError) as info:
        plan_sweep(spec, metric="val_los", direction="minimize", sweeps_dir=tmp_path)
    [problem] = info.value.problems
    assert problem.file == "--metric"
    assert "do not produce 'val_los'" in problem.message
    assert problem.hint == "did you mean 'val_loss'?"
    # a metric of another family (a VAE computes no nll), and one it could but does not
    for name, hint in (("nll", "give one of these"), ("bits_per_dim", "add bits_per_dim")):
        with pytest.raises(SpecError) as info:
            plan_sweep(spec, metric=name, direction="minimize", sweeps_dir=tmp_path)
        [problem] = info.value.problems
        assert "metrics.json: elbo, iwae_nll;" in problem.message
        assert "per-epoch logs: loss, reconstruction, kl, grad_norm, val_loss" in problem.message
        assert problem.hint is not None and problem.hint.startswith(hint)
    # what the runs do produce: metrics.json, the family's logs and their val_ versions
    for name in ("elbo", "iwae_nll", "loss", "kl", "val_kl", "val_reconstruction"):
        assert plan_sweep(spec, metric=name, direction="minimize", sweeps_dir=tmp_path)
    # a sweep block's metric is located at its line
    spec.write_text(spec.read_text().replace("sweep:\n", "sweep:\n  metric: nll\n"))
    with pytest.raises(SpecError) as info:
        plan_sweep(spec, direction="minimize", sweeps_dir=tmp_path)
    [problem] = info.value.problems
    assert (problem.path, problem.line) == ("sweep.metric", 15)


def test_a_gan_has_no_loss_but_its_own_logs_and_sample_metrics(tmp_path: Path) -> None:
    spec = ROOT / "specs" / "gan_ring8.yaml"
    with pytest.raises(SpecError, match="do not produce 'loss'"):
        plan_sweep(spec, grid_options=["seed=1"], metric="loss", sweeps_dir=tmp_path)
    for name in ("d_loss", "modes_captured", "high_quality", "energy_distance"):
        plan_sweep(
            spec, grid_options=["seed=1"], metric=name, direction="minimize", sweeps_dir=tmp_path
        )


@pytest.mark.parametrize(
    ("spec_name", "settings", "logged", "not_logged"),
    [
        ("tcvae_shapes2d", [], ["tc", "val_tc"], []),
        ("vae_moons", [], [], ["tc"]),  # a VAE without losses.tc logs none
        (  # validation reports a GAN's four base trackers only, no callback log
            "wgan_gp_ring8",
            [],
            ["gradient_penalty", "diversity", "val_d_loss"],
            ["augment_p", "val_gradient_penalty", "val_diversity", "val_d_grad_norm"],
        ),
        ("dcgan_digits_small", [], ["diversity"], ["gradient_penalty", "augment_p"]),
        (
            "dcgan_digits_small",
            ["model.augmentation={type: ada, policy: [translation]}"],
            ["augment_p"],
            [],
        ),
        ("bgmm_blobs", [], ["lower_bound"], ["grad_norm"]),
        ("gmm_moons_gradient", [], ["grad_norm"], ["lower_bound"]),
        ("gmm_moons", [], [], ["lower_bound", "grad_norm"]),
    ],
)
def test_a_log_only_some_models_write_is_accepted_for_those_alone(
    tmp_path: Path, spec_name: str, settings: list[str], logged: list[str], not_logged: list[str]
) -> None:
    spec = ROOT / "specs" / f"{spec_name}.yaml"

    def plan(metric: str) -> object:
        return plan_sweep(
            spec,
            grid_options=["seed=1"],
            metric=metric,
            direction="minimize",
            overrides=settings,
            sweeps_dir=tmp_path,
        )

    for name in logged:
        assert plan(name)
    for name in not_logged:  # refused before any trial, not after the first
        with pytest.raises(SpecError, match=f"do not produce '{name}'"):
            plan(name)


def test_the_optuna_hint_names_a_field_of_the_spec_family(tmp_path: Path) -> None:
    for name, field in (
        ("gmm_moons", "model.components: {type: int, low: 8, high: 32}"),
        ("vae_moons", "model.latent_dim: {type: int, low: 1, high: 4}"),
        ("flow_moons", "training.optimizer.learning_rate: {type: log_uniform"),
    ):
        with pytest.raises(SpecError) as info:
            plan_sweep(ROOT / "specs" / f"{name}.yaml", search="optuna", sweeps_dir=tmp_path)
        [problem] = info.value.problems
        assert problem.hint is not None and f"{{parameters: {{{field}" in problem.hint, name


def test_direction_comes_from_the_metric_or_must_be_given() -> None:
    assert metric_direction("elbo", None) == "maximize"
    assert metric_direction("val_loss", None) == "minimize"
    assert metric_direction("val_elbo", None) == "maximize"
    assert metric_direction("kl", "maximize") == "maximize"
    with pytest.raises(SpecError, match="give --direction"):
        metric_direction("kl", None)


def test_the_shipped_digits_spec_carries_a_sweep_that_validates() -> None:
    loaded = load_spec(ROOT / "specs" / "vae_digits.yaml")
    assert loaded.spec.sweep is not None and loaded.spec.sweep.metric == "elbo"


def test_sweep_help_and_validate_do_not_import_optuna_or_tensorflow() -> None:
    probe = (
        "import sys\nfrom gencompile.cli import main\nsys.argv = ['gencompile', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = {'optuna', 'tensorflow', 'sqlalchemy'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args in (["sweep", "--help"], ["validate", "specs/vae_digits.yaml"], ["compare", "--help"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"')) == [], args


def test_a_grid_value_given_twice_is_refused_at_the_option(tmp_path: Path) -> None:
    """Twice the same value would be one combination claimed twice (the second attempt
    then skipped as "taken by another process"): refused before anything trains."""
    spec = write_spec(tmp_path)
    with pytest.raises(SpecError) as info:
        plan_sweep(spec, ["model.latent_dim=4,4", "model.encoder.mlp=[8],[ 8 ]"])
    assert [str(problem) for problem in info.value.problems] == [
        "--grid: model.latent_dim: the value 4 is given twice (give each value once)",
        "--grid: model.encoder.mlp: the value [8] is given twice (give each value once)",
    ]


def test_trials_with_a_grid_are_refused_not_ignored(tmp_path: Path, run_cli) -> None:
    spec = write_spec(tmp_path)
    code, out, err = run_cli(
        "sweep", str(spec), "--grid", "model.latent_dim=2,3", "--trials", "5", "--epochs", "1"
    )
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "--trials: --grid: a grid runs each combination of its values once; --trials counts "
        "an optuna search's trials (leave out --trials, or use --search optuna without --grid)"
    ]


def test_the_sweeps_storage_is_part_of_its_identity_without_a_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any driver will do here (test_sweep_storage checks that it must be installed).
    monkeypatch.setattr("gencompile.sweep.plan.check_storage", lambda storage, folder: None)
    spec = write_spec(tmp_path)
    own = plan_sweep(spec, ["model.latent_dim=2,3"], sweeps_dir=tmp_path / "sweeps")
    assert own.identity()["storage"] is None  # the sweep folder's optuna.db
    shared = plan_sweep(
        spec,
        ["model.latent_dim=2,3"],
        sweeps_dir=tmp_path / "sweeps",
        storage="postgresql://ann:s3cret@db.example/optuna",
    )
    assert shared.storage == "postgresql://ann:s3cret@db.example/optuna"  # what Optuna opens
    assert shared.identity()["storage"] == "postgresql://ann:***@db.example/optuna"
