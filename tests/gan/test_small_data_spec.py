"""The small-data GAN's spec language (no training): `model.augmentation`, R1's
`interval`, the built-in source's `fraction`; errors at their line, words for `explain`,
the generated code, and the subset's size and class balance."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from gencompile.compiler.lower import lower
from gencompile.compiler.project import render_project
from gencompile.errors import RunError
from gencompile.spec import load_spec_text

REPO = Path(__file__).resolve().parents[2]
SPEC = """\
spec_version: 1
name: small-gan
data:
  source: {{type: builtin, name: {data}}}
  preprocessing: {preprocessing}
model:
  family: gan
  latent_dim: 4
  generator: {{mlp: [16]}}
  discriminator: {{mlp: [16]}}
{model}
"""


def write(tmp_path: Path, model: str, data: str = "digits", scale: str = "[-1.0, 1.0]") -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(
        SPEC.format(model=model, data=data, preprocessing=f"{{scale: {scale}}}"), encoding="utf-8"
    )
    return str(path)


def model_source(model: str) -> str:
    text = SPEC.format(model=model, data="digits", preprocessing="{scale: [-1.0, 1.0]}")
    loaded = load_spec_text(text)
    plan = lower(loaded)
    return render_project(loaded, plan)[f"{plan.package}/model.py"]


@pytest.mark.parametrize(
    ("model", "data", "scale", "located"),
    [
        (
            "  augmentation: {type: difaugment}",
            "digits",
            "[-1.0, 1.0]",
            "11:24: model.augmentation.type: unknown type 'difaugment'",
        ),
        (
            "  augmentation: {type: diffaugment, policy: [color, cutout, color]}",
            "digits",
            "[-1.0, 1.0]",
            "model.augmentation.policy: names 'color' twice",
        ),
        (
            "  augmentation: {type: diffaugment, policy: [colour]}",
            "digits",
            "[-1.0, 1.0]",
            "model.augmentation.policy[0]:",
        ),
        (
            "  augmentation: {type: ada, target: 1.5}",
            "digits",
            "[-1.0, 1.0]",
            "11:37: model.augmentation.target: must be < 1.0 (got 1.5)",
        ),
        (
            "  augmentation: {type: diffaugment}",
            "ring8",
            "[-1.0, 1.0]",
            "11:17: model.augmentation: diffaugment transforms images, but the data is vector",
        ),
        (
            "  augmentation: {type: ada}",
            "digits",
            "[0.0, 1.0]",
            "model.augmentation.policy: the color and cutout augmentations assume images "
            "scaled to [-1, 1]",
        ),
        (
            "  loss: {type: wasserstein}\n  spectral_norm: true\n  augmentation: {type: ada}",
            "digits",
            "[-1.0, 1.0]",
            "13:3: model.augmentation: ada steers p by how many real examples D scores as "
            "real, but the wasserstein critic's scores have no fixed boundary between real "
            "and generated; use augmentation: {type: diffaugment}, or the non_saturating, "
            "minimax, hinge or least_squares loss",
        ),
        (
            "  gradient_penalty: {type: r1, interval: 0}",
            "digits",
            "[-1.0, 1.0]",
            "11:42: model.gradient_penalty.interval: must be >= 1 (got 0)",
        ),
        (
            "  gradient_penalty: {type: wgan_gp, interval: 4}",
            "digits",
            "[-1.0, 1.0]",
            "model.gradient_penalty.interval: unknown key 'interval'",
        ),
    ],
)
def test_a_bad_choice_is_a_located_spec_error(run_cli, tmp_path, model, data, scale, located):
    spec = write(tmp_path, model, data, scale)
    code, _, err = run_cli("validate", spec)
    assert code == 2, err
    assert f"{spec}:" in err and located in " ".join(err.split()), err


def test_explain_describes_augmentation_and_lazy_r1(run_cli, tmp_path) -> None:
    model = (
        "  augmentation: {type: ada, target: 0.7, interval: 8, ramp_images: 20000}\n"
        "  gradient_penalty: {type: r1, weight: 2.0, interval: 16}"
    )
    code, out, err = run_cli("explain", write(tmp_path, model))
    assert code == 0, err
    words = " ".join(out.split())
    assert "adaptive augmentation (ADA: color, translation, cutout" in words
    assert "moves every 8 discriminator updates" in words and "to 0.7" in words
    assert "by up to 1 per 20,000 real examples" in words
    assert "r_t, the mean sign of D's logit on real images" in words
    assert "on every 16th discriminator update only, times 16" in words
    code, out, _ = run_cli(
        "explain", write(tmp_path, "  augmentation: {type: diffaugment, policy: [translation]}")
    )
    assert "through DiffAugment (translation)" in " ".join(out.split())


def test_the_generated_code_names_the_augmentation_and_the_lazy_penalty() -> None:
    source = model_source(
        "  augmentation: {type: ada, policy: [translation, cutout], initial_p: 0.25}\n"
        "  gradient_penalty: {type: r1, weight: 1.0, interval: 16}"
    )
    tree = ast.parse(source)
    constants = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    assert constants["AUGMENT_POLICY"] == ["translation", "cutout"]
    assert constants["PENALTY_INTERVAL"] == 16
    assert source.count("augment.diff_augment(") == 3  # T(x), T(G(z)) twice
    assert "probability=self.ada.probability" in source
    assert "initial_p=0.25" in source and "self.ada.update(real_scores)" in source
    assert "GRADIENT_PENALTY_WEIGHT * PENALTY_INTERVAL * penalty" in source
    assert 'gan.LastValue(name="augment_p")' in source
    assert 'gan.ComputedMean(name="gradient_penalty")' in source
    assert "threshold=0.0," in source  # the non-saturating loss's logit boundary


def test_ada_is_centred_on_the_least_squares_boundary(run_cli, tmp_path) -> None:
    model = "  loss: {type: least_squares}\n  augmentation: {type: ada}"
    assert "threshold=0.5," in model_source(model)
    code, out, err = run_cli("explain", write(tmp_path, model))
    assert code == 0, err
    assert "r_t, the mean sign of D(x) - 0.5 on real images" in " ".join(out.split())


def test_without_the_new_options_the_generated_code_does_not_mention_them() -> None:
    source = model_source("  gradient_penalty: {type: r1, weight: 1.0}")
    for absent in ("augment", "PENALTY_INTERVAL", "tf.cond", "self.ada"):
        assert absent not in source


def test_the_example_spec_validates(run_cli) -> None:
    code, _, err = run_cli("validate", str(REPO / "specs" / "dcgan_digits_small.yaml"))
    assert code == 0, err


# --------------------------------------------------------------------------- fraction


def test_fraction_keeps_a_fixed_stratified_share_of_the_digits() -> None:
    from sklearn.datasets import load_digits

    from gencompile.runtime.data import load_arrays

    digits = load_digits()
    source = {"type": "builtin", "name": "digits", "fraction": 0.1}
    x, y = load_arrays(source, seed=0)
    assert x.shape == (180, 8, 8, 1)
    assert np.bincount(y).tolist() == [18] * 10  # the digits hold 174..183 a class
    again, _ = load_arrays(source, seed=123)  # another seed: the same examples
    np.testing.assert_array_equal(x, again)
    # Real rows of the data set, in their order.
    rows = {image.tobytes(): i for i, image in enumerate(digits.images.astype("float32"))}
    found = [rows[image[..., 0].tobytes()] for image in x]
    assert found == sorted(found)
    assert [int(digits.target[i]) for i in found] == y.tolist()


def test_fraction_applies_after_classes_and_to_unlabelled_data() -> None:
    from gencompile.runtime.data import load_arrays

    x, y = load_arrays(
        {"type": "builtin", "name": "digits", "classes": [3, 8], "fraction": 0.5}, seed=0
    )
    counts = np.bincount(y, minlength=10)
    # Each class keeps its share: half of the 183 threes and of the 174 eights.
    assert len(x) == round(0.5 * (183 + 174))
    assert abs(int(counts[3]) - 91.5) <= 1 and abs(int(counts[8]) - 87) <= 1
    swiss = {"type": "builtin", "name": "swiss_roll", "n_samples": 200, "noise": 0.5}
    x, y = load_arrays({**swiss, "fraction": 0.25}, seed=1)
    assert x.shape == (50, 2) and y is None


def test_a_fraction_that_keeps_fewer_examples_than_classes_stops_with_advice() -> None:
    from gencompile.runtime.data import load_arrays

    with pytest.raises(RunError, match="fewer than the 10 classes; raise fraction to at least"):
        load_arrays({"type": "builtin", "name": "digits", "fraction": 0.004}, seed=0)


@pytest.mark.parametrize(
    ("source", "located"),
    [
        (
            "{type: builtin, name: digits, fraction: 0}",
            "4:51: data.source.fraction: must be > 0.0 (got 0)",
        ),
        ("{type: builtin, name: digits, fraction: 1.5}", "data.source.fraction: must be <= 1"),
        (
            "{type: builtin, name: arithmetic, fraction: 0.5}",
            "data.source.fraction: builtin data set 'arithmetic' is text",
        ),
    ],
)
def test_a_bad_fraction_is_a_located_spec_error(run_cli, tmp_path, source, located) -> None:
    path = tmp_path / "spec.yaml"
    text = SPEC.format(model="", data="digits", preprocessing="{scale: [-1.0, 1.0]}")
    path.write_text(text.replace("{type: builtin, name: digits}", source), encoding="utf-8")
    code, _, err = run_cli("validate", str(path))
    assert code == 2
    assert located in " ".join(err.split()), err
